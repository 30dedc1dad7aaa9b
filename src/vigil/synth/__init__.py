"""Synthetic test media with known ground truth: crowd videos composed from real people's
photos, for measuring live recognition (docs/synth.md).

A package of its own, not part of ``vigil.live``: it needs the engine (to choose photos
that pass the enrolment gate and to find a face) and nothing that holds data, so the CLI
can run it as a stateless tool and benchmarks and tests can use it without a data directory.
"""

from vigil.synth.crowd import CrowdOptions, generate_crowd

__all__ = ["CrowdOptions", "generate_crowd"]
