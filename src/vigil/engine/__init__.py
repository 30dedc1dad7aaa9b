"""Images in, faces and templates out: decoding, model packs, detection, alignment,
quality, embedding and calibration. Knows nothing of galleries, deployments or users."""
