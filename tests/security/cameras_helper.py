"""Registering the cameras a test's deployment names (deployments read registered cameras only)."""

from __future__ import annotations

from pathlib import Path


def register_sources(vigil, sources: list[dict]) -> None:
    """Register each ``{"camera", "source"}`` not registered yet, as the data directory's first
    administrator; a file's folder becomes the media root (tests keep their videos in one folder)."""
    from vigil.services.cameras import list_cameras, register_camera

    admin = vigil.cli_actor()
    known = {c["name"] for c in list_cameras(vigil, admin, limit=1000).items}
    for entry in sources:
        name, source = entry.get("camera"), str(entry.get("source") or "")
        if not source or name in known:
            continue
        if "://" not in source and not source.isdigit():
            _media_root(vigil, Path(source).parent)
        register_camera(vigil, admin, name, source)
        known.add(name)


def _media_root(vigil, folder: Path) -> None:
    """This process's settings and the data directory's vigil.toml (for the CLI in a subprocess)."""
    vigil.settings.live.media_root = folder
    config = vigil.settings.home / "vigil.toml"
    if not config.exists():
        config.write_text(f'[live]\nmedia_root = "{folder}"\n', encoding="utf-8")
