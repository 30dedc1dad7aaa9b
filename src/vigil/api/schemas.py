"""Request bodies (pydantic): validated before any service runs, so malformed requests get 422."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CollectionIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    pack: str | None = None
    purpose: str = ""
    legal_basis: str = ""
    category: str = "unspecified"
    expires_at: datetime | None = None


class AuthoriseIn(BaseModel):
    note: str = ""


class DeleteIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class MemberIn(BaseModel):
    subject_id: str = Field(min_length=1, max_length=40)


class CameraIn(BaseModel):
    """A registered camera, by name (``source`` may name it instead, or repeat its registered source)."""

    camera: str = Field(min_length=1, max_length=60)
    source: str = Field("", max_length=1000)


class DeploymentIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    location: str = Field("", max_length=300)
    cameras: list[CameraIn] = Field(min_length=1, max_length=32)
    watchlists: list[str] = Field(min_length=1, max_length=16)
    window_start: datetime | None = None
    window_end: datetime | None = None
    legal_basis: str = ""
    purpose: str = ""
    false_alert_rate: float = Field(1e-4, gt=0, lt=0.1)
    category_rates: dict[str, float] = {}
    trial: bool = False


class RunIn(BaseModel):
    fast: bool = False
    max_seconds: float | None = Field(None, gt=0, le=24 * 3600)


class OutcomesIn(BaseModel):
    engagements: int | None = Field(None, ge=0)
    arrests: int | None = Field(None, ge=0)


class DecisionIn(BaseModel):
    decision: str
    outcome: str = "no_action"
    notes: str = Field("", max_length=4000)
    case_ref: str = Field("", max_length=200)
    reason: str = Field("", max_length=2000)  # needed to revise an earlier decision


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=80)
    role: str
    display_name: str = ""
    password: str | None = Field(None, min_length=10, max_length=200)


class TokenIn(BaseModel):
    name: str = ""
    days: float | None = Field(None, gt=0, le=3650)
