"""Request bodies and parameter types (pydantic): validated before any service runs, so a
malformed request gets a 422 problem, never a 500. Every integer is bounded (ids 1..2^63-1, what
the databases store), every float finite, every date-time timezone-aware (a naive one is read
as UTC), every text field has a maximum length."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Form, Path, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

MAX_ID = 2**63 - 1  # the largest BIGINT (PostgreSQL) and INTEGER (SQLite)
TEXT = 2000  # purposes, legal bases, notes and reasons
EARLIEST_YEAR, LATEST_YEAR = 1970, 9000


def _as_utc(value: datetime) -> datetime:
    """A naive date-time is UTC; an aware one is converted to UTC. Years outside 1970-9000 are
    refused (so that no window arithmetic can overflow)."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"the year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_only(value):
    """A date-time is ISO 8601 text (or a datetime): pydantic's lax mode would read a number,
    or a string of one, as seconds since 1970 ("until=0.5" meant 1 January 1970)."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("a date-time in ISO 8601 (e.g. 2026-12-31T23:59:59Z), not a number")
    return value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
UtcDateTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_as_utc)]
# numbers in bodies are JSON numbers: true, false and "5" are refused, not read as 1, 0 and 5
Number = Annotated[float, Strict()]
Count = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="a numeric id (1 to 2^63-1)")]
CollectionName = Annotated[str, Path(min_length=1, max_length=120)]
SubjectId = Annotated[str, Path(min_length=1, max_length=40)]
Username = Annotated[str, Path(min_length=1, max_length=80)]
Year = Annotated[int, Path(ge=2000, le=2100, description="the reports cover 2000 to 2100")]
Role = Literal["admin", "supervisor", "operator", "investigator", "auditor"]
ReportFormat = Annotated[Literal["json", "html", "csv", "png"], Query()]
AfterId = Annotated[int, Query(ge=0, le=MAX_ID, description="only alerts with a larger id")]
# Every list is paged (vigil.services.pages): limit and cursor in; items and next_cursor out.
Limit = Annotated[int, Query(ge=1, le=1000, description="how many items a page holds at most (1 to 1,000)")]
Cursor = Annotated[str | None, Query(min_length=1, max_length=400, pattern=r"^[A-Za-z0-9_-]+$",
                                     description="the previous page's next_cursor, unchanged; none for the first page")]


class Body(BaseModel):
    """Every request body: NaN and infinity are refused in every float."""

    model_config = ConfigDict(allow_inf_nan=False)


class CollectionIn(Body):
    name: str = Field(min_length=1, max_length=120)
    pack: str | None = Field(None, max_length=20)
    purpose: str = Field("", max_length=TEXT)
    legal_basis: str = Field("", max_length=TEXT)
    category: str = Field("unspecified", max_length=40)
    expires_at: UtcDateTime | None = None


class AuthoriseIn(Body):
    note: str = Field("", max_length=TEXT)


class DeleteIn(Body):
    reason: str = Field(min_length=1, max_length=2000)


class MemberIn(Body):
    subject_id: str = Field(min_length=1, max_length=40)


class CameraIn(Body):
    """A registered camera, by name (``source`` may name it instead, or repeat its registered source)."""

    camera: str = Field(min_length=1, max_length=60)
    source: str = Field("", max_length=1000)


Placement = Annotated[str, Field(pattern=r"^(local|any|site:[A-Za-z0-9_-]{1,40})$", description=(
    "where its cameras run: local (one process), any (any cluster node) or site:LABEL (the nodes of one site)"))]


class DeploymentIn(Body):
    name: str = Field(min_length=1, max_length=200)
    location: str = Field("", max_length=300)
    cameras: list[CameraIn] = Field(min_length=1, max_length=32)
    watchlists: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(min_length=1, max_length=16)
    window_start: UtcDateTime | None = None
    window_end: UtcDateTime | None = None
    legal_basis: str = Field("", max_length=TEXT)
    purpose: str = Field("", max_length=TEXT)
    false_alert_rate: Number = Field(1e-4, gt=0, lt=0.1)
    category_rates: dict[Annotated[str, Field(max_length=40)], Annotated[Number, Field(gt=0, lt=0.1)]] = Field(
        default_factory=dict, max_length=16)
    trial: Flag = False
    placement: Placement = "local"


class PlaceIn(Body):
    placement: Placement


class RunIn(Body):
    fast: Flag = False
    max_seconds: Number | None = Field(None, gt=0, le=24 * 3600)


class OutcomesIn(Body):
    engagements: Count | None = Field(None, ge=0, le=1_000_000)
    arrests: Count | None = Field(None, ge=0, le=1_000_000)


class DecisionIn(Body):
    decision: Literal["confirmed", "false_alert", "unverified"]
    outcome: Literal["no_action", "engaged", "arrested"] = "no_action"
    notes: str = Field("", max_length=4000)
    case_ref: str = Field("", max_length=200)
    reason: str = Field("", max_length=2000)  # needed to revise an earlier decision


class UserIn(Body):
    username: str = Field(min_length=1, max_length=80)
    role: Role
    display_name: str = Field("", max_length=200)
    password: str | None = Field(None, min_length=10, max_length=200)


class TokenIn(Body):
    name: str = Field("", max_length=120)
    days: Number | None = Field(None, gt=0, le=3650)


class RoleIn(Body):
    role: Role


class CancelIn(Body):
    reason: str = Field("", max_length=TEXT)


class RejectIn(Body):
    reason: str = Field(min_length=1, max_length=TEXT)


DeploymentState = Literal["draft", "authorised", "running", "ended", "failed", "cancelled"]


class LoginForm:
    """The OAuth2 password form (``POST /api/token``), each field bounded: no password longer
    than any Vigil accepts reaches the password hash."""

    def __init__(self, username: Annotated[str, Form(max_length=80)],
                 password: Annotated[str, Form(max_length=200)],
                 grant_type: Annotated[Literal["password"] | None, Form()] = None,
                 scope: Annotated[str, Form(max_length=200)] = ""):
        self.username, self.password, self.grant_type, self.scopes = username, password, grant_type, scope.split()


JPEG = {200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}}
REPORT_FORMATS = {200: {"content": {"text/html": {"schema": {"type": "string"}},
                                    "text/csv": {"schema": {"type": "string"}},
                                    "image/png": {"schema": {"type": "string", "format": "binary"}}}}}
