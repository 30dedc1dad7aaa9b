"""What the API answers on success (pydantic): every JSON operation declares one of these as
its ``response_model``, so that the OpenAPI document gives a schema for every 2xx answer and a
client generated from it knows each field.

Each model lists every field the service returns and forbids any other (``extra="forbid"``,
``additionalProperties: false`` in the document). FastAPI filters an answer through its
response model, so a field a model forgot would otherwise vanish without a word; here it fails
the request instead (a 500 with an incident id), and ``tests/api/test_openapi_responses.py``
fails before that can ship. A field that only some answers carry is declared with
:func:`sometimes` (optional; its type says whether it may be null when present), and the routes
returning such a model set ``response_model_exclude_unset=True`` so that it stays absent rather
than becoming null.

Times are ISO 8601 text in UTC, as the services write them (``2026-05-01T12:00:00.123456Z``).
Errors are not here: every error answer is a problem (:mod:`vigil.api.errors`).
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from vigil.api.schemas import Role

T = TypeVar("T")


def _no_default(schema: dict) -> None:
    schema.pop("default", None)  # absent, not null: the document shows no default


def sometimes(description: str, **kwargs) -> Any:
    """A field present in some answers only; every route answering with a model that has one
    sets ``response_model_exclude_unset=True``."""
    return Field(None, description=description, json_schema_extra=_no_default, **kwargs)


def is_sometimes(field: FieldInfo) -> bool:
    """Whether a model's field was declared with :func:`sometimes`."""
    return field.json_schema_extra is _no_default


Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Decision = Literal["confirmed", "false_alert", "unverified"]
Outcome = Literal["no_action", "engaged", "arrested"]
DeploymentStatus = Literal["draft", "authorised", "running", "ended", "failed", "cancelled"]
Box = Annotated[list[int], Field(description="the face's box in the image: x, y, width, height (pixels)")]


class Out(BaseModel):
    """Every answer: exactly the fields listed, no other."""

    model_config = ConfigDict(extra="forbid")


class Page(Out, Generic[T]):
    """One page of a list, in the list's order."""

    items: list[T] = Field(description="this page's items (at most ``limit``)")
    next_cursor: str | None = Field(
        description="pass it back unchanged as ``cursor`` for the next page; null on the last page. Opaque: "
                    "it belongs to the list that gave it out (another list refuses it with a 400)")


# -- system and login ------------------------------------------------------------------------------
class Health(Out):
    ok: bool
    version: str = Field(description="Vigil's version")


class AccessToken(Out):
    """OAuth2 password flow: a bearer token naming a new login session (also set as a cookie)."""

    access_token: str = Field(description="a signed access token: send it as ``Authorization: Bearer ...``")
    token_type: Literal["bearer"]
    expires_in: int = Field(description="seconds until the access token expires")
    role: Role


class LoggedOut(Out):
    ok: Literal[True] = Field(description="always true: the caller is logged out either way")
    session_ended: bool = Field(description="whether a live login session was ended (false for an API token, "
                                            "or a credential that had already ended)")
    sessions_revoked: int = sometimes("login sessions ended (present when a session was named)")
    tokens_revoked: int = sometimes("API tokens minted from that session, revoked with it")


class Me(Out):
    username: str
    role: Role
    permissions: list[str] = Field(description="every permission the role holds (e.g. alert.decide)")


class LoginSession(Out):
    id: str = Field(description="the session's id (the ``sid`` its access tokens name)")
    created_at: Timestamp
    client: str | None = Field(description="the client address it was opened from")
    revoked_at: Timestamp | None = Field(description="when it ended (logout, password reset, ...); null while live")
    revoked_reason: str | None


class ApiTokenInfo(Out):
    """An API token as listed: never the secret, its first characters only."""

    id: int = Field(description="revoke it with POST /api/tokens/{id}/revoke")
    user: str = Field(description="its owner")
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: Timestamp
    expires_at: Timestamp | None = Field(description="null: does not expire")
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None
    from_login_session: bool = Field(description="minted from a login session: it ends when that session ends")
    active: bool = Field(description="neither revoked nor expired")


class NewApiToken(Out):
    id: int
    token: str = Field(description="the secret, shown once: send it as ``Authorization: Bearer ...``")


class TokenRevoked(Out):
    id: int
    revoked: Literal[True]


# -- users -----------------------------------------------------------------------------------------
class UserSummary(Out):
    username: str
    role: Role
    disabled: bool


class UserCreated(Out):
    username: str
    role: Role
    password: str | None = Field(description="the generated password, shown once; null when one was given")


class RevokedAccess(Out):
    sessions_revoked: int = sometimes("login sessions of the user ended by the change")
    tokens_revoked: int = sometimes("API tokens of the user revoked by the change")


class UserDisabled(RevokedAccess):
    """Disabling ends every session and token of the user (the counts); enabling ends none."""

    username: str
    disabled: bool


class PasswordReset(Out):
    username: str
    password: str = Field(description="the new generated password, shown once")
    sessions_revoked: int = Field(description="login sessions of the user ended")
    tokens_revoked: int = Field(description="API tokens of the user revoked")


class RoleChanged(RevokedAccess):
    """A changed role ends the user's sessions and tokens (the counts; absent when the role stayed)."""

    username: str
    role: Role
    previous_role: Role


# -- galleries, watchlists, subjects ----------------------------------------------------------------
class Collection(Out):
    """A gallery (for retrospective search) or a watchlist (for live recognition)."""

    id: int
    kind: Literal["gallery", "watchlist"]
    name: str
    pack: str = Field(description="the model pack its templates come from (e.g. sface)")
    model_id: str = Field(description="the exact model its templates were made with")
    purpose: str
    legal_basis: str
    category: str = Field(description="what kind of people it lists (e.g. wanted, missing; reference for a gallery)")
    status: Literal["active", "expired"]
    created_by: str
    created_at: Timestamp
    authorised_by: str | None = Field(description="the supervisor who authorised this content (watchlists); null "
                                                  "when never authorised or withdrawn by a later change")
    authorised_at: Timestamp | None
    expires_at: Timestamp | None
    subjects: int = Field(description="how many subjects it lists")
    snapshots: int = Field(description="frozen copies of it held by deployments (not yet erased)")


class Withdrawal(Out):
    """A watchlist whose authorisation this change withdrew (it needs authorising again)."""

    watchlist: str
    because: str


WITHDRAWN = "authorised watchlists whose authorisation this change withdrew"


class CollectionDeleted(Out):
    name: str
    subjects_erased: int = Field(description="subjects that were on no other collection, erased with it")
    subjects_kept_elsewhere: int = Field(description="subjects that also belong elsewhere: only this membership ended")
    reason: str


class Member(Out):
    id: str = Field(description="the subject's pseudonymous id")
    name: str
    category: str
    reference: str = Field(description="e.g. a warrant or case number")
    added_at: Timestamp = Field(description="when the subject was added to this collection (the list's order, "
                                            "newest first)")


class MemberAdded(Out):
    subject_id: str
    added: bool = Field(description="false when the subject was already on it")
    templates_extracted: int = Field(description="templates made from the subject's stored images for this "
                                                 "collection's model")
    authorisation_withdrawn: list[Withdrawal] = Field(description=WITHDRAWN)


class MemberRemoved(Out):
    subject_id: str
    removed: bool = Field(description="false when the subject was not on it")
    authorisation_withdrawn: list[Withdrawal] = Field(description=WITHDRAWN)


class SubjectCollection(Out):
    kind: Literal["gallery", "watchlist"]
    name: str


class SubjectImage(Out):
    id: int
    width: int
    height: int
    box: Box
    quality: float | None = Field(description="the face's quality score at enrolment, 0 to 1")
    created_at: Timestamp


class Subject(Out):
    id: str = Field(description="pseudonymous id; audit and search records name only this")
    name: str
    category: str
    reference: str = Field(description="e.g. a warrant or case number")
    notes: str
    created_by: str
    created_at: Timestamp
    collections: list[SubjectCollection] = Field(description="the galleries and watchlists listing the subject")
    images: list[SubjectImage] = Field(description="the enrolled face images (the image itself: .../image)")


class ShardErasure(Out):
    """One sharded gallery's erasure, confirmed by its replicas (docs/cluster.md)."""

    gallery: str
    templates: int = Field(description="the subject's templates sent to every replica")
    templates_removed: int = Field(description="templates the replicas removed from memory on this erasure (each "
                                               "template sits on every replica of one shard; 0 where a replica had "
                                               "already replayed the database's erasure)")
    replicas_confirmed: list[str] = Field(description="the replicas that confirmed they no longer hold them")
    replicas_per_shard: dict[str, int] = Field(description="confirmations per shard, keyed I/N")
    replicas_down: list[str] = Field(description="replicas registered but dead (no heartbeat): not confirmed, and "
                                                 "they rebuild from the database, which no longer holds the subject, "
                                                 "when they start")
    seconds: float


class SubjectErased(Out):
    subject_id: str
    images: int = Field(description="face images deleted")
    templates: int = Field(description="templates deleted")
    collections: int = Field(description="collections the subject was removed from")
    snapshot_entries: int = Field(description="entries deleted from deployments' frozen watchlist copies")
    alerts_stripped: int = Field(description="alerts about the subject that lost their images and name (their "
                                             "record stays: pseudonymous id, score, decision)")
    reason: str
    authorisation_withdrawn: list[Withdrawal] = Field(description=WITHDRAWN)
    shards: list[ShardErasure] = sometimes("where the subject was on a sharded gallery: each such gallery's "
                                           "erasure, confirmed by every live replica of every shard before this "
                                           "answer")


class Enrolled(Out):
    """One image's enrolment (a face that fails the quality gate is a 422 problem instead)."""

    source: str = Field(description="the uploaded file's name")
    status: Literal["enrolled", "skipped"] = Field(description="skipped: this image is already enrolled here")
    subject_id: str
    reasons: list[str] = sometimes("why it was skipped")
    warning: str = sometimes("e.g. the face looks like another subject already enrolled")
    authorisation_withdrawn: list[Withdrawal] = Field(description=WITHDRAWN)


class Quality(Out):
    """A face's quality: a score and the measures behind it; ``reasons`` says what failed."""

    score: float = Field(description="0 to 1")
    eye_distance: float = Field(description="pixels between the eyes")
    detection_score: float
    yaw: float = Field(description="degrees (a coarse estimate from five landmarks)")
    pitch: float = Field(description="degrees (coarse)")
    roll: float = Field(description="degrees")
    sharpness: float
    brightness: float
    contrast: float
    reasons: list[str] = Field(description="each limit the face fails; empty when it passes")
    passed: bool


class EnrolPreview(Out):
    """The face that would be enrolled, and its quality; nothing stored."""

    stored: Literal[False]
    box: Box
    quality: Quality
    faces_in_image: int
    warning: str | None = Field(description="e.g. a group photo: choose the face (``face``)")


# -- retrospective search --------------------------------------------------------------------------
class Candidate(Out):
    rank: int = Field(description="1 = the highest score")
    subject_id: str
    name: str
    score: float = Field(description="cosine similarity of the best of the subject's templates")
    fmr: float = Field(description="the calibrated false match rate at this score: the share of comparisons "
                                   "of different people that score this high")
    fmr_is_upper_bound: bool = Field(description="the score is beyond the calibration data: fmr is an upper bound")
    expected_false_candidates_at_this_score: float = Field(
        description="fmr times the gallery's templates: how many different people are expected to score this "
                    "high in a gallery this size")


class SearchFace(Out):
    """One face of the probe, with its ranked candidates."""

    box: Box
    quality: float = Field(description="the probe face's quality score, 0 to 1")
    quality_reasons: list[str]
    candidates: list[Candidate]
    warnings: list[str] = Field(description="e.g. too close to call between two candidates, a poor probe")
    crop: str = Field(description="the probe face as a JPEG data URL")
    time: float = sometimes("a video probe: seconds into the video of the face's best shot")
    track_id: int = sometimes("a video probe: the track the face was followed on")
    shots: int = sometimes("a video probe: how many shots of the track were combined")


class SearchResult(Out):
    """A retrospective search (recorded with its case reference and reason). The system
    proposes candidates; a person decides."""

    model_config = ConfigDict(populate_by_name=True)

    id: int = Field(description="the search record's id (GET /api/searches)")
    created_at: Timestamp
    case_ref: str
    reason: str
    gallery: str = Field(description="the gallery (or watchlist) searched")
    model_id: str
    gallery_subjects: int
    gallery_templates: int
    probe: Literal["image", "video"]
    threshold_fmr_1e_4: float = Field(alias="threshold_fmr_1e-4",
                                      description="the score at which the false match rate is 1 in 10,000")
    calibration: str = Field(description="the data set the false match rates were measured on")
    faces: list[SearchFace]


class SearchRecord(Out):
    """A search as the record keeps it (who, when, which case, why)."""

    id: int
    at: Timestamp
    by: str = Field(description="who searched")
    case_ref: str
    reason: str
    collection: str = Field(description="the gallery or watchlist searched")
    probe: Literal["image", "video"]
    faces: int = Field(description="faces found in the probe")
    top: int = Field(description="candidates asked for per face")
    candidates: int = Field(description="faces with a candidate list kept in the record")
    probe_kept: bool = Field(description="the probe image is kept as evidence (until retention deletes it)")


# -- cameras ---------------------------------------------------------------------------------------
class Camera(Out):
    """A registered camera: the only sources a deployment may read."""

    name: str
    kind: str = Field(description="webcam, rtsp, rtsps, http, https, file or folder")
    source: str = Field(description="where it reads from (a password in a URL shown as ***)")
    description: str
    registered_by: str
    registered_at: Timestamp | None = Field(description="when it was registered")


# -- deployments -----------------------------------------------------------------------------------
class DeploymentSource(Out):
    """A camera as the deployment recorded it (stored as planned: older plans hold fewer fields)."""

    camera: str
    source: str = sometimes("where it reads from (a password in a URL shown as ***)")
    kind: str = sometimes("the camera's kind (absent on deployments planned before cameras were registered)")


class SourceCheck(Out):
    camera: str
    source: str
    kind: str
    checked: bool = Field(description="checked now (a file or folder); a stream or webcam is first opened when the "
                                      "deployment starts")
    why: str | None = Field(description="why it was not checked")


class Deployment(Out):
    """The plan of one authorised, time-boxed use of live recognition at one place, and its state."""

    id: int
    name: str
    location: str
    status: DeploymentStatus
    trial: bool = Field(description="a trial: recorded as such, authorised by whoever started it")
    purpose: str
    legal_basis: str
    cameras: list[DeploymentSource] = Field(description="the registered cameras it reads, as planned")
    watchlists: list[str]
    window_start: Timestamp | None
    window_end: Timestamp | None
    false_alert_rate: float = Field(description="accepted false alerts per face seen (e.g. 0.0001)")
    category_rates: dict[str, float] = Field(description="accepted false alert rates per watchlist category, "
                                                         "where they differ from false_alert_rate")
    created_by: str
    authorised_by: str | None
    authorised_at: Timestamp | None
    started_at: Timestamp | None
    ended_at: Timestamp | None
    watchlist_size: int = Field(description="entries in the watchlists frozen when it started (0 before)")
    heartbeat_at: Timestamp | None = Field(description="its runner's last heartbeat (while running)")
    stop_requested_by: str | None = Field(description="who asked a running deployment to stop")
    ended_because: str | None
    placement: str = Field(description="where its cameras run: local (one process), any (any cluster node) or "
                                       "site:LABEL (the nodes of one site)")


class DeploymentCreated(Deployment):
    source_checks: list[SourceCheck] = Field(description="what was checked of each camera now")


RUNNER_STALE = ("running: whether its runner stopped sending heartbeats (its process died; stop it to mark it "
                "failed); null when not running")


class DeploymentListed(Deployment):
    runner_stale: bool | None = Field(description=RUNNER_STALE)


class DeploymentRecord(Out):
    """The published record of one deployment (the figures police forces publish, and a few more)."""

    deployment_id: int
    name: str
    location: str
    trial: bool
    date: str | None = Field(description="the day it started (YYYY-MM-DD)", json_schema_extra={"format": "date"})
    start: Timestamp | None
    end: Timestamp | None
    duration_minutes: float | None
    status: DeploymentStatus
    legal_basis: str
    authorised_by: str | None
    watchlist_size: int
    faces_seen: int = Field(description="unique face tracks compared with the watchlist (their images discarded)")
    alerts: int
    true_alerts: int = Field(description="alerts confirmed as the listed person")
    false_alerts: int
    unverified_alerts: int
    undecided_alerts: int
    false_alert_rate: float | None = Field(description="false alerts per face seen; null before any face")
    engagements: int
    arrests: int
    frames: int
    frames_dropped: int
    threshold: float | None = Field(description="the score threshold it ran with (entries of one photo)")
    threshold_by_references: dict[str, float] | None = Field(
        None, description="the threshold of entries averaging 1, 2 or 3 reference photos, where they differ")
    accepted_false_alert_rate: float
    expected_miss_rate: float | None = Field(description="the share of genuine comparisons in the calibration data "
                                                         "below the threshold")
    notes: list[str]
    ended_because: str | None


class ReaderHealth(Out):
    camera: str
    status: str = Field(description="ok, starting, stalled, ended, failed, or a stream's own state")
    frames: int
    dropped: int
    error: str | None
    seconds_since_frame: float | None
    reconnects: int
    warning: str | None


class PipelineCounts(Out):
    frames: int = Field(description="frames processed")
    faces_compared: int
    tracks: int


class LiveStatus(Out):
    """A run inside this server process."""

    running: bool
    error: str | None = Field(description="why the run stopped with an error")
    summary: dict[str, Any] | None = Field(description="the run's final summary, once it is over")
    cameras: list[ReaderHealth]
    pipelines: dict[str, PipelineCounts] = Field(description="per camera")
    alerts: int


class DeploymentCamera(Out):
    """One camera of a deployment as planned, and where it runs and how it is doing. A cluster
    deployment's as its recorder last saw the nodes; one run in a single process has counts once
    it ended."""

    camera: str
    source: str = sometimes("where it reads from (a password in a URL shown as ***)")
    kind: str = sometimes("the camera's kind (absent on deployments planned before cameras were registered)")
    node: str | None = Field(description="the cluster node running it, ``one process`` for a deployment not placed "
                                         "on the cluster; null while no node holds it")
    state: str | None = Field(description="on the cluster: starting, running, ended, unplaced (no node runs it)")
    health: str | None = Field(description="ok, starting, stalled, ended, failed, or a stream's own state")
    lag_s: float | None = Field(description="seconds its processing is behind the camera")
    frames: int | None
    dropped: int | None = Field(description="frames dropped to keep up")
    heartbeat_at: str | None = Field(description="its node's last report on it (ISO 8601)")
    heartbeat_age_s: float | None = Field(description="seconds since that report")
    reason: str | None = Field(description="why no node runs it, or what its node warns of")
    site: str | None = sometimes("the site of the node running it")
    since: str | None = sometimes("since when that node has held it (ISO 8601)")
    faces_seen: int | None = sometimes("faces its node compared with the watchlist")
    alerts: int | None = sometimes("alerts its node raised")
    fps: float | None = sometimes("frames its node processes per second")


class DeploymentDetail(DeploymentListed):
    record: DeploymentRecord
    live: LiveStatus | None = Field(description="its run in this server process; null when it runs elsewhere or "
                                                "not at all")
    cameras: list[DeploymentCamera] = Field(description="each camera: where it runs and how it is doing")


class DeploymentStopped(Deployment):
    record: DeploymentRecord
    stop: str = Field(description="what happened: stopped, requested (stops at the runner's next heartbeat), marked "
                                  "failed, or nothing to stop")


class WatchlistPlan(Out):
    name: str
    subjects: int
    subjects_by_photos: dict[str, int] = Field(description="subjects by the photos their entry will average "
                                                             "(\"1\", \"2\", \"3\")")
    category: str
    pack: str
    authorised: bool
    authorised_by: str | None
    expires_at: Timestamp | None
    expired: bool


class PhotosThreshold(Out):
    threshold: float = Field(description="the threshold of entries averaging that many photos")
    expected_miss_rate: float | None


class ThresholdPlan(Out):
    accepted_false_alerts_per_10000_faces: float
    per_comparison_fmr: float = Field(description="the accepted rate divided by the watchlist entries")
    threshold: float = Field(description="the score that per-comparison false match rate gives")
    expected_miss_rate: float | None = Field(description="the share of genuine comparisons in the calibration data "
                                                         "below the threshold")
    by_photos: dict[str, PhotosThreshold] | None = Field(
        None, description="entries averaging 2 or 3 photos: their own threshold and expected misses")


class AuthorisationView(Deployment):
    """What authorising the plan means, in numbers."""

    watchlists_detail: list[WatchlistPlan]
    watchlist_entries: int = Field(description="subjects on all its watchlists together")
    photos_averaged_at_most: int = Field(description="photos of a subject averaged into its one entry at most")
    thresholds: dict[str, ThresholdPlan] = Field(description="``default``, and ``category:NAME`` for each category "
                                                             "with a rate of its own")
    calibration: str = Field(description="the data set the thresholds and miss rates come from")
    problems: list[str] = Field(description="what stops it from starting (a watchlist unauthorised, expired, empty)")
    miss_rate_note: str


# -- alerts ----------------------------------------------------------------------------------------
class RunnerUp(Out):
    """The closest other watchlist subject."""

    subject_id: str
    name: str
    category: str
    score: float
    threshold: float = Field(description="that subject's own threshold")
    lookalike: bool = Field(description="it scored within a small margin of its threshold: it nearly alerted too")


class DecisionRecord(Out):
    seq: int = Field(description="1 for the first decision; each later one revises the one before")
    decided_by: str
    decided_at: Timestamp
    decision: Decision
    outcome: Outcome
    notes: str | None
    case_ref: str | None
    reason: str | None = Field(description="why an earlier decision was revised")


class Alert(Out):
    """A match a person must decide (the system proposes; the operator decides)."""

    type: Literal["alert"]
    id: int
    deployment_id: int
    deployment: str = Field(description="the deployment's name")
    subject_id: str = Field(description="pseudonymous id (kept after the subject is erased)")
    name: str = Field(description="the subject's name; empty once erased or stripped by retention")
    category: str
    score: float
    threshold: float
    fmr: float = Field(description="the calibrated false match rate at this score")
    camera: str
    time: float = Field(description="seconds into the source")
    utc: Timestamp
    track_id: int
    decision: Decision | None = Field(description="the latest decision; null while undecided")
    outcome: Outcome | None
    decided_by: str | None
    notes: str | None
    runner_up: RunnerUp | None
    lookalike_warning: str | None = Field(description="said when the runner-up nearly alerted too: compare with both")
    score_words: str = Field(description='the score against the threshold in words, e.g. "0.620, well above the '
                                         'threshold 0.480 (+0.140)"')
    runner_up_words: str | None = Field(description="the runner-up's score against their own threshold, in words")
    reference: str | None = Field(description="the subject's reference (e.g. a warrant or case number), read now; "
                                              "null when none, or the subject was erased since")
    subject_on_record: bool = Field(description="the subject is still enrolled (false once erased)")
    watchlist_id: int | None = Field(description="the watchlist that listed the subject")
    watchlist: str | None = Field(description="that watchlist's name; null once it was deleted")
    watchlist_expires_at: Timestamp | None
    watchlist_status: Literal["active", "expired"] | None = Field(description="null once the watchlist was deleted")


class AlertListed(Alert):
    undecided: bool
    has_images: bool = Field(description="its images are kept (retention deletes them)")
    case_ref: str | None


class AlertDecided(Alert):
    case_ref: str | None
    history: list[DecisionRecord] = Field(description="every decision, oldest first")


class AlertDetail(AlertDecided):
    has_images: bool = Field(description="its images are kept (retention deletes them)")
    has_clip: bool = Field(description="an evidence clip is kept (.../clip.avi)")


# -- accountability --------------------------------------------------------------------------------
class AuditEntry(Out):
    seq: int = Field(description="its place in the hash chain (1, 2, ...)")
    ts: Timestamp
    actor: str
    action: str = Field(description="e.g. alert.decided, search.run")
    object_type: str
    object_id: str
    details: dict[str, Any] = Field(description="what the action recorded (its own fields per action)")


class AnchorRestore(Out):
    entry: int
    published: str
    restored_head: int
    replaced_head: int
    anchored_before: int
    discarded: list[int] | None = Field(description="the first and last entries the restore discarded")
    other_versions: list[int]


class AnchorState(Out):
    """What the audit anchor (outside the data directory) holds of this log."""

    kind: str
    location: str
    key_id: str
    public_key: str
    chain: str | None = Field(description="the log's first entry's hash: the anchor may serve several logs")
    records: int
    other_logs_records: int
    pending: int = Field(description="heads spooled while the anchor was unreachable")
    anchored_head: int | None
    restores: list[AnchorRestore]
    invalid_records: list[str]


class AuditVerification(Out):
    ok: bool = Field(description="the whole chain verifies and matches its head (and the anchor)")
    entries: int
    first_bad_entry: int | None
    reason: str | None = Field(description="why it does not verify")
    head: int | None = Field(description="the head recorded outside the database")
    note: str = sometimes("e.g. entries after the recorded head, or restores the anchor explains")
    anchor: AnchorState = sometimes("with an anchor configured: what it holds")


class AnnualTotals(Out):
    deployments: int
    faces_seen: int
    alerts: int
    true_alerts: int
    false_alerts: int
    unverified_alerts: int
    undecided_alerts: int
    engagements: int
    arrests: int
    false_alert_rate: float | None


class AnnualReport(Out):
    year: int
    includes_trials: bool
    totals: AnnualTotals
    deployments: list[DeploymentRecord] = Field(description="every deployment that started that year")


class RetentionRun(Out):
    """How many of each kind the retention policy purged."""

    alerts_false_alert: int = Field(description="false alerts stripped of images, name and notes")
    alerts_confirmed: int
    alerts_unverified: int
    alerts_undecided: int
    snapshot_entries: int = Field(description="entries of finished deployments' frozen watchlists erased")
    snapshots: int
    search_probes: int = Field(description="kept search probes deleted")
    orphan_files: int = Field(description="encrypted files whose rows were gone")
