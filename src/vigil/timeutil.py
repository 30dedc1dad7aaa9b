"""Time helpers: everything stored is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; treat them as the UTC they were stored as."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def parse_when(text: str, *, end_of_day: bool = False) -> datetime:
    """Parse a date or datetime given on the command line or API (assumed UTC if naive).
    A bare date is the start of that day, or with ``end_of_day`` (an expiry, a window's end) its
    last second: ``--expires 2026-12-31`` still holds on 31 December."""
    from vigil.errors import VigilError

    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise VigilError(f"not a date or date-time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if end_of_day and len(text.strip()) == 10:  # YYYY-MM-DD: no time given
        value += timedelta(days=1, seconds=-1)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
