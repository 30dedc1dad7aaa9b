"""Accuracy and fairness evaluation: protocols (LFW verification, open-set identification),
metrics with confidence intervals, demographic differentials and reports."""
