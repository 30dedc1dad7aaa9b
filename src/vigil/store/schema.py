"""The database schema (SQLAlchemy 2 declarative). Alembic migrations in ``migrations/``
are generated from it and checked against it by the tests.

Biometric columns (``*_enc``) hold AES-GCM ciphertext only; images live in encrypted blob
files referenced by ``blob_id``. Subject ids are pseudonymous (random), and records that
must outlive a subject (audit, searches, alert outcomes) keep only that id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, Index,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from vigil.timeutil import utcnow


class Base(DeclarativeBase):
    pass


# --------------------------------------------------------------------------- people & access
class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    os_user: Mapped[str | None] = mapped_column(String(80), unique=True, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80), default="")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the login session this token was minted from (None: minted by an admin or the CLI);
    # ending that session revokes the token too
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True,
                                                   index=True)
    user: Mapped[User] = relationship()


class LoginSession(Base):
    """A server-side login session: every signed access token names one (``sid``), and a
    request is refused once its session is revoked (logout, password reset, disable, role change)."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_created", "user_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    client: Mapped[str] = mapped_column(String(120), default="")


class LoginThrottle(Base):
    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# --------------------------------------------------------------------------- biometric store
class Subject(Base):
    __tablename__ = "subjects"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # pseudonymous, random
    display_name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40), default="unspecified")
    reference: Mapped[str] = mapped_column(String(200), default="")  # case or warrant reference
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    images: Mapped[list["FaceImage"]] = relationship(back_populates="subject", cascade="all, delete-orphan",
                                                     passive_deletes=True)


class Collection(Base):
    """A gallery (reference collection for retrospective search) or a watchlist."""

    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("kind", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # gallery | watchlist
    name: Mapped[str] = mapped_column(String(120))
    pack: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(120))
    purpose: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(40), default="unspecified")
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | expired
    created_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    authorised_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    authorised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Membership(Base):
    __tablename__ = "memberships"
    # a collection's subjects, newest first, a page at a time (a million deep costs what the first page does)
    __table_args__ = (Index("ix_memberships_collection_added", "collection_id", "added_at", "subject_id"),)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True)
    added_by: Mapped[str] = mapped_column(String(80), default="")
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FaceImage(Base):
    __tablename__ = "face_images"
    __table_args__ = (UniqueConstraint("collection_id", "content_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id", ondelete="SET NULL"),
                                                      nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))  # keyed HMAC, see crypto.content_key
    blob_id: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    box: Mapped[list] = mapped_column(JSON, default=list)
    quality: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    subject: Mapped[Subject] = relationship(back_populates="images")
    templates: Mapped[list["TemplateRow"]] = relationship(back_populates="image", cascade="all, delete-orphan",
                                                         passive_deletes=True)


class TemplateRow(Base):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("image_id", "model_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("face_images.id", ondelete="CASCADE"))
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(120), index=True)
    vector_enc: Mapped[bytes] = mapped_column(LargeBinary)
    quality_score: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    image: Mapped[FaceImage] = relationship(back_populates="templates")


class IndexChange(Base):
    """Append-only log of template additions/removals; persisted indexes replay it."""

    __tablename__ = "index_changes"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[int] = mapped_column(Integer, index=True)
    op: Mapped[str] = mapped_column(String(6))  # add | remove
    template_id: Mapped[int] = mapped_column(Integer)


class Blob(Base):
    """An encrypted file under ``$VIGIL_HOME/blobs`` (face image, crop, frame, export cache)."""

    __tablename__ = "blobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Snapshot(Base):
    """A frozen version of a watchlist (for a deployment, or on request)."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("watchlist_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer, default=0)
    frozen_by: Mapped[str] = mapped_column(String(80), default="")
    frozen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deployment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    entries: Mapped[list["SnapshotEntry"]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class SnapshotEntry(Base):
    __tablename__ = "snapshot_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    image_blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    vector_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # reference photos averaged into the template (the matcher's calibration table follows it)
    reference_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class SearchRecord(Base):
    __tablename__ = "searches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    case_ref: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id", ondelete="SET NULL"), nullable=True)
    collection_name: Mapped[str] = mapped_column(String(120), default="")
    probe_kind: Mapped[str] = mapped_column(String(12))  # image | video
    top_k: Mapped[int] = mapped_column(Integer)
    faces: Mapped[int] = mapped_column(Integer, default=0)
    results: Mapped[list] = mapped_column(JSON, default=list)  # subject ids and scores only
    probe_blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class ExportRecord(Base):
    __tablename__ = "exports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))
    path: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


# --------------------------------------------------------------------------- live
class Camera(Base):
    """A registered camera: the only sources a deployment may name (an administrator's allow-list)."""

    __tablename__ = "cameras"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    kind: Mapped[str] = mapped_column(String(12))  # rtsp | rtsps | http | https | webcam | file | folder
    source: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    registered_by: Mapped[str] = mapped_column(String(80), default="")
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Deployment(Base):
    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(300), default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    sources: Mapped[list] = mapped_column(JSON, default=list)  # [{"camera": name, "source": uri}]
    watchlist_ids: Mapped[list] = mapped_column(JSON, default=list)
    snapshot_ids: Mapped[list] = mapped_column(JSON, default=list)
    window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    false_alert_rate: Mapped[float] = mapped_column(Float, default=1e-4)  # per face seen
    category_rates: Mapped[dict] = mapped_column(JSON, default=dict)
    is_trial: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="draft")  # see services/deployments.py TRANSITIONS
    created_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    authorised_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    authorised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    watchlist_size: Mapped[int] = mapped_column(Integer, default=0)
    frames: Mapped[int] = mapped_column(Integer, default=0)
    frames_dropped: Mapped[int] = mapped_column(Integer, default=0)
    faces_seen: Mapped[int] = mapped_column(Integer, default=0)
    engagements: Mapped[int] = mapped_column(Integer, default=0)
    arrests: Mapped[int] = mapped_column(Integer, default=0)
    record: Mapped[dict] = mapped_column(JSON, default=dict)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # runner alive
    stop_requested_by: Mapped[str | None] = mapped_column(String(80), nullable=True)  # runner stops at next beat
    # where its cameras run: None = one process (vigil deployment run, the API server); "any" =
    # any cluster node; "site:LABEL" = nodes of that site (vigil node --site)
    placement: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # a cluster deployment's cameras as the recorder last saw them: node, health, lag, dropped frames
    camera_status: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_deployment_created", "deployment_id", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    camera: Mapped[str] = mapped_column(String(120))
    source_time: Mapped[float] = mapped_column(Float)
    track_id: Mapped[int] = mapped_column(Integer)
    subject_id: Mapped[str] = mapped_column(String(40), index=True)  # pseudonymous, outlives erasure
    subject_name: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(40), default="")
    watchlist_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    fmr: Mapped[float] = mapped_column(Float)
    probe_blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    frame_blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    watchlist_blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    clip_blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)  # confirmed|false_alert|unverified
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)  # no_action|engaged|arrested
    decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    case_ref: Mapped[str] = mapped_column(String(200), default="")
    biometrics_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the closest other watchlist subject: id, name, category, score, threshold, lookalike (bool)
    runner_up: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # the id a cluster node gave the alert (its JetStream message id): recorded once, whatever
    # redelivery brings it again; None for alerts of a run in one process
    alert_uid: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True, index=True)


class AlertDecision(Base):
    """Every adjudication of an alert, append-only (the Alert row's decision columns hold the latest)."""

    __tablename__ = "alert_decisions"
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    decided_by: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decision: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str] = mapped_column(Text, default="")
    case_ref: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text, default="")  # why a later decision revised the one before


# --------------------------------------------------------------------------- accountability
class AuditEntry(Base):
    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))  # ISO-8601 UTC, exactly as hashed
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str] = mapped_column(String(40), default="")
    object_id: Mapped[str] = mapped_column(String(80), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON, exactly as hashed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(64))


# --------------------------------------------------------------------------- models
class ModelRecord(Base):
    """A recogniser brought in by a site (``vigil models add``) or installed from its publisher
    (``vigil models install``): who, when, what file (SHA-256) under which licence. The model
    file and its manifest live in the data directory's ``model_registry/``."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(12), default="registered")  # registered | installed
    source_sha256: Mapped[str] = mapped_column(String(64))
    file_sha256: Mapped[str] = mapped_column(String(64))
    dim: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict] = mapped_column(JSON, default=dict)  # the manifest as published
    licence: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    registered_by: Mapped[str] = mapped_column(String(80), default="")
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
