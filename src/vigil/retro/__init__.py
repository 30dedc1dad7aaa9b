"""Retrospective work's runtime mechanics, no database: probe faces from images and video,
enrolment manifests, face crops and contact sheets. The use cases (enrolment, search,
subject access, reindexing) are in ``vigil.services``."""
