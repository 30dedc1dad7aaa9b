"""Registered cameras: the administrator's allow-list of what a deployment may read.

A deployment never names a URL or a path of its own: an operator picks registered cameras by
name, so the server reaches only the hosts, devices and folders an administrator put on the
list (a stream ``rtsp|rtsps|http|https://host/...``, a webcam index, or a video file or a
folder of frames under the media root, setting ``live.media_root``, default ``media/`` in the
data directory). A source that is not on the list is refused, and the refusal is audited.

``vigil watch --source`` on the local machine (a trial by a supervisor or an administrator)
may also read a local file, folder or webcam that is not registered: the command runs as the
operating-system user who typed it and reads only what that user can read. The API never
allows this (``local_trial`` is the CLI's), and a trial never reaches a URL that is not
registered.

At run time every camera is checked again (still registered, same source, a file still under
the media root after its symlinks are resolved).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.errors import ConflictError, NotFoundError, VigilError
from vigil.governance.permissions import Actor
from vigil.live.sources import STREAM_SCHEMES, source_kind
from vigil.services.pages import Page, keyset_page
from vigil.services.unit import refuse, use_case
from vigil.store.schema import Camera
from vigil.timeutil import iso

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$")
LOCAL = "local (vigil watch)"


class SourceRefused(VigilError):
    """A camera source that is not on the allow-list."""


def media_root(settings) -> Path:
    return Path(settings.live.media_root or settings.home / "media").expanduser().resolve()


def masked(source: str) -> str:
    """The source as it may be shown or audited: a password in a URL is replaced by ***."""
    if "://" not in source:
        return source
    parts = urlsplit(source)
    if parts.password is None:
        return source
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _local_path(settings, source: str, *, under_root: bool, must_exist: bool = True) -> tuple[str, str]:
    path = Path(source).expanduser()
    if not path.is_absolute():
        raise SourceRefused(f"{source}: give an absolute path")
    real = path.resolve()
    root = media_root(settings)
    if under_root and not real.is_relative_to(root):
        raise SourceRefused(f"{source}: outside the media root {root} (setting live.media_root); file and folder "
                            "cameras must lie under it")
    if must_exist and not real.exists():
        raise SourceRefused(f"{source}: no such file or folder")
    return ("folder" if real.is_dir() else "file"), str(real)


def classify(settings, source: str, *, under_root: bool = True) -> tuple[str, str]:
    """(kind, normalised source) of a source an administrator registers; raises :class:`SourceRefused`."""
    source = (source or "").strip()
    if not source:
        raise SourceRefused("a camera needs a source")
    try:
        kind = source_kind(source)
    except VigilError as exc:
        raise SourceRefused(str(exc)) from None
    if kind == "webcam":
        return "webcam", str(int(source))
    if kind in STREAM_SCHEMES:
        parts = urlsplit(source)
        if not parts.hostname:
            raise SourceRefused(f"{masked(source)}: the URL names no host")
        return kind, source
    return _local_path(settings, source, under_root=under_root)


def _view(cam: Camera) -> dict:
    return {"name": cam.name, "kind": cam.kind, "source": masked(cam.source), "description": cam.description,
            "registered_by": cam.registered_by,
            "registered_at": iso(cam.registered_at)}


def register_camera(vigil, actor: Actor, name: str, source: str, description: str = "") -> dict:
    name = (name or "").strip()
    if not NAME.match(name):
        raise VigilError("a camera name is 1-60 letters, digits, '.', '_' or '-', starting with a letter or digit")
    kind, normalised = classify(vigil.settings, source)
    with use_case(vigil, actor, "camera.manage") as uow:
        if uow.session.scalar(select(Camera).where(Camera.name == name)) is not None:
            raise ConflictError(f"camera {name!r} is already registered (remove it first to change its source)")
        cam = Camera(name=name, kind=kind, source=normalised, description=description.strip(),
                     registered_by=actor.username)
        uow.session.add(cam)
        uow.session.flush()
        uow.audit("camera.registered", "camera", name, {"kind": kind, "source": masked(normalised)})
        return _view(cam)


def list_cameras(vigil, actor: Actor, *, cursor: str | None = None, limit: int | None = None) -> Page:
    """Registered cameras by name, one page at a time."""
    with use_case(vigil, actor, "deployment.view") as uow:
        return keyset_page(uow.session, select(Camera), list_name="cameras", order=[Camera.name],
                           key_of=lambda c: (c.name,), item_of=_view, cursor=cursor, limit=limit)


def remove_camera(vigil, actor: Actor, name: str) -> dict:
    """Deployments that name it can no longer start (they are checked again at run time)."""
    with use_case(vigil, actor, "camera.manage") as uow:
        cam = uow.session.scalar(select(Camera).where(Camera.name == name))
        if cam is None:
            raise NotFoundError(f"no camera {name!r} (vigil camera list)")
        view = _view(cam)
        uow.session.delete(cam)
        uow.audit("camera.removed", "camera", name, {"kind": cam.kind, "source": view["source"]})
        return view


def _registry(session: Session) -> dict[str, Camera]:
    return {c.name: c for c in session.scalars(select(Camera))}


def _resolve_one(settings, registry: dict[str, Camera], entry: dict, local_trial: bool) -> dict:
    label = str(entry.get("camera") or "").strip()
    wanted = str(entry.get("source") or "").strip()
    if wanted in registry:  # the source names a registered camera
        cam = registry[wanted]
        return {"camera": cam.name, "source": cam.source, "kind": cam.kind}
    cam = registry.get(label)
    if cam is not None:
        if wanted and wanted not in (cam.source, masked(cam.source)):
            raise SourceRefused(f"camera {label!r} is registered with another source; a deployment picks a "
                                "camera by name and cannot change its source")
        return {"camera": cam.name, "source": cam.source, "kind": cam.kind}
    if local_trial and wanted:
        kind = source_kind(wanted)
        if kind == "webcam":
            return {"camera": label, "source": str(int(wanted)), "kind": LOCAL}
        if kind == "file":
            return {"camera": label, "source": _local_path(settings, wanted, under_root=False)[1], "kind": LOCAL}
    known = ", ".join(sorted(registry)) or "none yet"
    what = f"{label!r}" + (f" ({masked(wanted)})" if wanted else "")
    raise SourceRefused(f"camera {what} is not a registered camera; deployments read only cameras an "
                        f"administrator registered (vigil camera add); registered: {known}")


def resolve_sources(vigil, actor: Actor, session: Session, entries: list[dict], *, local_trial: bool = False
                    ) -> list[dict]:
    """The deployment's sources, each a registered camera (or, for a local trial, a local file,
    folder or webcam). A refused source is audited in its own transaction, then raised."""
    registry = _registry(session)
    local_trial = local_trial and actor.via == "cli"
    out = []
    for entry in entries:
        try:
            out.append(_resolve_one(vigil.settings, registry, entry, local_trial))
        except SourceRefused as exc:
            refuse(vigil, actor, "camera.source_refused", "camera", str(entry.get("camera") or ""), str(exc),
                   {"source": masked(str(entry.get("source") or ""))}, error=SourceRefused)
    return out


def stored(resolved: list[dict]) -> list[dict]:
    """The sources as a deployment keeps them: a password in a URL is never stored there (the
    run reads the registered camera's source)."""
    return [{**r, "source": masked(r["source"])} for r in resolved]


def sources_for_run(vigil, actor: Actor, session: Session, sources: list[dict]) -> list[dict]:
    """The sources to open now; raises :class:`SourceRefused` when one may not be read (a camera
    removed or changed, a file moved out of the media root, a local trial source started from
    anywhere but the command line)."""
    registry = _registry(session)
    out = []
    for src in sources:
        name = src.get("camera")
        if src.get("kind") == LOCAL:
            if actor.via != "cli":
                raise SourceRefused(f"camera {name!r} is a local trial source (vigil watch); it runs only from "
                                    "the command line")
            out.append({"camera": name, "source": src["source"]})
            continue
        cam = registry.get(name)
        if cam is None or masked(cam.source) != src.get("source"):
            raise SourceRefused(f"camera {name!r} is no longer registered with this source")
        if cam.kind in ("file", "folder"):
            # a symlink swapped in since registration is refused; a file gone fails the run itself
            _local_path(vigil.settings, cam.source, under_root=True, must_exist=False)
        out.append({"camera": name, "source": cam.source})
    return out
