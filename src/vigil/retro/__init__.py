"""Retrospective work: enrolment into galleries and watchlists, and search (RFR)."""
