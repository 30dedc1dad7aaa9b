"""Helpers every CLI command shares: settings, output (human or --json), errors."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import typer
from rich.console import Console

from vigil.config import Settings, get_settings

console = Console(soft_wrap=True)  # never wrap at 80 columns: logs and grep read these lines
err_console = Console(stderr=True, soft_wrap=True)

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of text.")
PackOpt = typer.Option(None, "--pack", help="Model pack: sface (default), dlib, fusion, custom, faceplugin, "
                       "a model registered with 'vigil models add', or fusion:A+B (see 'vigil models').")


def settings() -> Settings:
    return get_settings()


def to_jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), default=str) + "\n")
    sys.stdout.flush()


def emit(data: Any, as_json: bool, human: Callable[[Any], None] | None = None) -> None:
    if as_json or human is None:
        print_json(data)
    else:
        human(data)


LimitOpt = typer.Option(100, "--limit", min=1, max=1000, help="At most this many rows (one page; 1 to 1,000).")
CursorOpt = typer.Option(None, "--cursor", help="The next page: the cursor the previous page printed.")


def emit_page(page, as_json: bool, human: Callable[[list], None], command: str) -> None:
    """One page of a list: ``{"items", "next_cursor"}`` as JSON, or the table and, when more
    rows follow, the command that shows them."""
    if as_json:
        print_json(page.as_dict())
        return
    human(page.items)
    if page.next_cursor:
        console.print(f"More rows follow: {command} --cursor {page.next_cursor}", markup=False, highlight=False)
