"""Cursor pagination, the same for every list (API, CLI, console).

A list answers one page: ``items`` and ``next_cursor``, an opaque string to pass back as
``cursor`` for the next page, ``None`` on the last one. Pages are keyset pages: the cursor
holds the sort key of the last item shown (an id, a sequence number, a name and an id), so a
page costs the same at item 10 and at item 1,000,000, and rows added or removed meanwhile
never shift what the next page shows (no item is skipped or repeated, unlike offsets).

A cursor names the list it came from: one passed to another list is refused, as is one that
was altered, with a clear message (``BadCursor``, HTTP 400).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import Session

from vigil.errors import VigilError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class BadCursor(VigilError):
    """A cursor that is not one this list gave out."""


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next_cursor: str | None = None

    def as_dict(self) -> dict:
        return {"items": self.items, "next_cursor": self.next_cursor}


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise VigilError(f"limit must be between 1 and {MAX_LIMIT}")
    return int(limit)


def encode_cursor(list_name: str, key: Sequence) -> str:
    raw = json.dumps({"list": list_name, "after": list(key)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(list_name: str, cursor: str | None, arity: int) -> tuple | None:
    """The sort key a cursor carries, or None for the first page."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        key = data["after"]
        ok = data["list"] == list_name and isinstance(key, list) and len(key) == arity and \
            all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in key)
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        ok = False
    if not ok:
        raise BadCursor(f"this cursor is not one this list ({list_name}) gave out: pass the next_cursor of "
                        "the previous page unchanged, or none for the first page")
    return tuple(key)


def _after(columns: Sequence, key: tuple, descending: bool):
    """Rows strictly after ``key`` in (c1, c2, ...) order, as one row-value comparison
    (``(c1, c2) > (k1, k2)``) that SQLite and PostgreSQL answer from an index on the columns."""
    left = columns[0] if len(columns) == 1 else tuple_(*columns)
    right = key[0] if len(columns) == 1 else tuple_(*[literal(v) for v in key])
    return left < right if descending else left > right


def keyset_page(session: Session, query: Select, *, list_name: str, order: Sequence, key_of: Callable[[Any], tuple],
                item_of: Callable[[Any], dict], cursor: str | None, limit: int | None,
                descending: bool = False, scalars: bool = True,
                key_from_cursor: Callable[[tuple], tuple] | None = None) -> Page:
    """One page of ``query`` ordered by the ``order`` columns (all ascending or all descending;
    the last must be unique), starting after ``cursor``. ``key_of`` reads a row's sort key as
    JSON values (ints, text), ``key_from_cursor`` turns them back into column values where
    they differ (a time kept as ISO text), ``item_of`` turns a row into the item shown."""
    limit = check_limit(limit)
    key = decode_cursor(list_name, cursor, len(order))
    if key is not None and key_from_cursor is not None:
        try:
            key = tuple(key_from_cursor(key))
        except (TypeError, ValueError) as exc:
            raise BadCursor(f"this cursor is not one this list ({list_name}) gave out") from exc
    if key is not None:
        query = query.where(_after(order, key, descending))
    query = query.order_by(*[c.desc() if descending else c.asc() for c in order]).limit(limit + 1)
    rows = list(session.scalars(query) if scalars else session.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(list_name, key_of(rows[-1])) if more else None
    return Page([item_of(r) for r in rows], next_cursor)



def every_item(fetch: Callable[[str | None], Page]):
    """Each item of every page, for a caller that needs the whole list (few items: cameras,
    users): ``fetch(cursor)`` returns one page."""
    cursor = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
