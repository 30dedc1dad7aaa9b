"""Live facial recognition: sources, tracking, per-camera pipeline, deployments, alerts."""
