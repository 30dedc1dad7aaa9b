"""Registered cameras: the only sources a deployment may read (an administrator's allow-list)."""

from __future__ import annotations

import typer
from rich.table import Table

from vigil.cli.common import CursorOpt, JsonOpt, LimitOpt, console, emit, emit_page
from vigil.cli.common_ctx import ctx

camera_app = typer.Typer(help="Registered cameras: the sources deployments may read (administrators).",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(camera_app, name="camera")


@camera_app.command("add")
def camera_add(name: str = typer.Argument(..., help="The name operators pick in 'deployment create --camera'."),
               source: str = typer.Argument(..., help="rtsp(s)://host/... or http(s)://host/..., a webcam index, "
                                            "or a video file or folder of frames under the media root "
                                            "(setting live.media_root)."),
               description: str = typer.Option("", "--description", help="Where it is and what it sees."),
               as_json: bool = JsonOpt) -> None:
    """Register a camera (administrators)."""
    from vigil.services.cameras import register_camera

    vigil, actor = ctx()
    data = register_camera(vigil, actor, name, source, description)
    emit(data, as_json, lambda d: console.print(f"Camera {d['name']} registered ({d['kind']}: {d['source']})"))


@camera_app.command("list")
def camera_list(limit: int = LimitOpt, cursor: str = CursorOpt, as_json: bool = JsonOpt) -> None:
    """The registered cameras (passwords in URLs are never shown)."""
    from vigil.services.cameras import list_cameras

    vigil, actor = ctx()

    def human(rows):
        table = Table(title="Registered cameras")
        for col in ("name", "kind", "source", "registered by", "description"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], r["kind"], r["source"], r["registered_by"], r["description"])
        console.print(table)

    emit_page(list_cameras(vigil, actor, cursor=cursor, limit=limit), as_json, human, "vigil camera list")


@camera_app.command("remove")
def camera_remove(name: str, as_json: bool = JsonOpt) -> None:
    """Remove a camera; deployments that name it can no longer start."""
    from vigil.services.cameras import remove_camera

    vigil, actor = ctx()
    data = remove_camera(vigil, actor, name)
    emit(data, as_json, lambda d: console.print(f"Camera {d['name']} removed"))
