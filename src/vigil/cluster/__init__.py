"""Vigil beyond one machine, on NATS JetStream (``pip install 'vigil[nats]'``).

NATS carries control, alerts (encrypted with Vigil's keys before they leave a process) and
gallery search requests and answers (encrypted as well); never a frame, a crop or the template
of a face that did not match. The database stays the record. See ``docs/cluster.md``.

This package sits beside the API and the console: it drives the service layer and the
runtimes below it, and nothing below imports it (``tests/test_layering.py``).
"""
