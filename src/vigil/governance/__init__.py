"""Accountability: who may do what (roles and permissions), the tamper-evident audit
chain, users and authentication, retention, and transparency reports."""
