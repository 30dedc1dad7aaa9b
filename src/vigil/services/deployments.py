"""Deployments: the authorised, time-boxed use of live recognition at one location.

A deployment's lifecycle is a state machine; every allowed move is in :data:`TRANSITIONS`,
and a refused move names the real reason (``it has ended``, not ``not authorised``)::

    draft --authorise--> authorised --start--> running --end--> ended
      |                    |  ^  |                 |
      |                    |  +--+ (re-authorise)  +--fail--> failed
      +------cancel--------+--cancel--> cancelled

``ended``, ``failed`` and ``cancelled`` are final. A running deployment's frozen watchlist
snapshot (biometric copies) is erased when it fails, at once, whatever the retention
setting. ``vigil watch`` without a deployment creates a *trial*: recorded as such,
authorised by the acting user, and allowed only to roles that may authorise deployments.

Cancelling (a draft or authorised deployment) is for whoever may authorise deployments, and
for the deployment's own creator while they hold ``deployment.create``: the person who
planned it may withdraw the plan; nobody else below a supervisor may.

Starting, running, stopping and failing live in :mod:`vigil.services.live_runs`.

A deployment runs in one process (``vigil deployment run``, the API server) unless it is
*placed* on the cluster (:func:`place_deployment`): ``any`` node, or the nodes of one site
(``site:LABEL``); its cameras are then claimed by ``vigil node`` processes and the recorder
reports each camera's node, health, lag and dropped frames (:func:`deployment_status`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from vigil.engine.images import IMAGE_SUFFIXES
from vigil.engine.packs import check_live_pack
from vigil.errors import ConflictError, PermissionDenied, PolicyError, VigilError
from vigil.governance.permissions import Actor
from vigil.services.cameras import LOCAL, masked, resolve_sources, stored
from vigil.services.pages import Page, keyset_page
from vigil.services.unit import refuse, use_case
from vigil.store.collections import get_collection
from vigil.store.deployments import deployment_record, describe, get_deployment
from vigil.store.schema import Deployment
from vigil.timeutil import as_utc, iso, utcnow

STATES = ("draft", "authorised", "running", "ended", "failed", "cancelled")
FINAL = ("ended", "failed", "cancelled")
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "authorise"): "authorised",
    ("authorised", "authorise"): "authorised",  # re-authorised, e.g. after its watchlist changed
    ("draft", "cancel"): "cancelled",
    ("authorised", "cancel"): "cancelled",
    ("authorised", "start"): "running",
    ("running", "end"): "ended",
    ("running", "fail"): "failed",
}
# Why an action is not possible in a state, in words a person can act on.
STATE_REASONS = {
    "draft": "it has not been authorised by a supervisor",
    "authorised": "it is not running",
    "running": "it is running (stop it first)",
    "ended": "it has ended",
    "failed": "it failed and cannot be restarted (create a new deployment)",
    "cancelled": "it was cancelled",
}

HEARTBEAT_STALE_FACTOR = 3  # a runner silent for 3 heartbeat intervals is taken for dead
HEARTBEAT_MIN_STALE = timedelta(seconds=30)  # but never sooner (models take a while to load)


def transition(dep: Deployment, action: str) -> str | None:
    """The state ``action`` leads to from ``dep``'s state, or None if the table forbids it."""
    return TRANSITIONS.get((dep.status, action))


def why_not(dep: Deployment, action: str) -> str:
    if dep.status == "running" and action == "start":
        return "it is already running"
    return STATE_REASONS.get(dep.status, f"it is {dep.status}")


def heartbeat_stale(dep: Deployment, now: datetime | None = None) -> bool | None:
    """For a running deployment: has its runner stopped beating (its process died)? None otherwise."""
    if dep.status != "running":
        return None
    every = float((dep.record or {}).get("heartbeat_every", 5.0))
    last = as_utc(dep.heartbeat_at) or as_utc(dep.started_at)
    if last is None:
        return True
    return (now or utcnow()) - last > max(timedelta(seconds=every * HEARTBEAT_STALE_FACTOR), HEARTBEAT_MIN_STALE)


PLACEMENT_HELP = "local (one process), any (any cluster node) or site:LABEL (the nodes of that site)"


def check_placement(placement: str | None) -> str | None:
    """Where a deployment's cameras run, as stored: None (one process), ``any`` or ``site:LABEL``."""
    value = (placement or "").strip()
    if value in ("", "local"):
        return None
    if value == "any":
        return value
    label = value.removeprefix("site:")
    if value.startswith("site:") and label and len(label) <= 40 and all(c.isalnum() or c in "-_" for c in label):
        return f"site:{label}"
    raise VigilError(f"placement {value!r}: use {PLACEMENT_HELP}; a site label is letters, digits, - and _")


def _check_cluster_sources(sources: list[dict], placement: str | None) -> None:
    local = [s["camera"] for s in sources if s.get("kind") == LOCAL]
    if placement and local:
        raise VigilError(f"camera {local[0]!r} is a local trial source (vigil watch): it runs only in the process "
                         "that started it, never on cluster nodes")


def check_source(resolved: dict) -> dict:
    """What was checked of a (registered) camera source: a file or folder now, a network stream
    or a webcam only when the deployment starts, and the result says so."""
    camera, kind = resolved["camera"], resolved["kind"]
    shown = {"camera": camera, "source": masked(resolved["source"]), "kind": kind}
    if kind in ("webcam", "rtsp", "rtsps", "http", "https") or resolved["source"].isdigit():
        why = ("a webcam is opened only when the deployment starts" if resolved["source"].isdigit() else
               "a network stream cannot be checked without connecting to it; it is first opened when the "
               "deployment starts")
        return {**shown, "checked": False, "why": why}
    path = Path(resolved["source"])
    if path.is_dir() and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        raise VigilError(f"camera {camera!r}: {path}: the folder holds no image frames")
    return {**shown, "checked": True, "why": None}


def _check_plan(name, watchlists, sources, false_alert_rate, category_rates, start, end, trial, legal_basis):
    if not name.strip():
        raise VigilError("a deployment needs a name")
    if not watchlists:
        raise VigilError("a deployment needs at least one watchlist")
    if not sources:
        raise VigilError("a deployment needs at least one camera source")
    if not 0 < false_alert_rate < 0.1:
        raise VigilError("the accepted false alert rate per face must be between 0 and 0.1 (e.g. 0.0001)")
    for cat, rate in (category_rates or {}).items():
        if not 0 < rate < 0.1:
            raise VigilError(f"category {cat}: rate must be between 0 and 0.1")
    if end <= start:
        raise VigilError("the window must end after it starts")
    if not trial and not legal_basis.strip():
        raise PolicyError("a deployment needs its legal basis (--legal-basis)")
    cams = [s.get("camera") or s.get("source") for s in sources]
    if len(set(cams)) != len(cams):
        raise VigilError("camera names must be unique")


def create_deployment(vigil, actor: Actor, *, name: str, location: str, sources: list[dict], watchlists: list[str],
                      window_start: datetime | None, window_end: datetime | None, legal_basis: str = "",
                      purpose: str = "", false_alert_rate: float = 1e-4,
                      category_rates: dict[str, float] | None = None, trial: bool = False,
                      local_trial: bool = False, placement: str | None = None) -> dict:
    """``sources``: registered cameras, ``{"camera": name}`` (see :mod:`vigil.services.cameras`);
    ``local_trial`` (the command line's ``vigil watch`` only) also admits a local file, folder or
    webcam for a trial; ``placement``: where its cameras run (:func:`check_placement`)."""
    placement = check_placement(placement)
    start = window_start or utcnow()
    end = window_end or start + timedelta(hours=4)
    with use_case(vigil, actor, "deployment.trial" if trial else "deployment.create") as uow:
        _check_plan(name, watchlists, sources, false_alert_rate, category_rates, start, end, trial, legal_basis)
        resolved = resolve_sources(vigil, actor, uow.session, sources, local_trial=local_trial and trial)
        if len({r["camera"] for r in resolved}) != len(resolved):
            raise VigilError("a camera can be named only once in a deployment")
        checks = [check_source(r) for r in resolved]
        _check_cluster_sources(resolved, placement)
        colls = [get_collection(uow.session, "watchlist", w) for w in watchlists]
        for c in colls:
            check_live_pack(c.pack)
        models = {c.model_id for c in colls}
        if len(models) > 1:
            raise VigilError(f"the watchlists use different models ({', '.join(sorted(models))}); reindex one")
        dep = Deployment(name=name.strip(), location=location, purpose=purpose, legal_basis=legal_basis,
                         sources=stored(resolved),
                         watchlist_ids=[c.id for c in colls], window_start=start, window_end=end,
                         false_alert_rate=false_alert_rate, category_rates=category_rates or {}, is_trial=trial,
                         created_by=actor.username, status="draft", record={}, placement=placement)
        if trial:
            dep.status, dep.authorised_by, dep.authorised_at = "authorised", actor.username, utcnow()
        uow.session.add(dep)
        uow.session.flush()
        uow.audit("deployment.created", "deployment", dep.id, {
            "name": dep.name, "location": location, "trial": trial, "watchlists": [c.name for c in colls],
            "cameras": [r["camera"] for r in resolved], "window_start": iso(start), "window_end": iso(end),
            "false_alert_rate": false_alert_rate, "category_rates": category_rates or {},
            "sources_checked": {c["camera"]: c["checked"] for c in checks}, "placement": placement or "local"})
        if trial:
            uow.audit("deployment.authorised", "deployment", dep.id, {"trial": True, "self_authorised": True})
        return {**describe(uow.session, dep), "source_checks": checks}


def _refused(vigil, actor, dep_id: int, dep_name: str, action: str, why: str):
    """A move its present state does not allow (409), audited with the real reason."""
    refuse(vigil, actor, "deployment.refused", "deployment", dep_id, why, {"action": action},
           error=ConflictError, message=f"deployment {dep_id} ({dep_name}) cannot {action}: {why}")


def authorise_deployment(vigil, actor: Actor, deployment_id, note: str = "") -> dict:
    with use_case(vigil, actor, "deployment.authorise") as uow:
        dep = get_deployment(uow.session, deployment_id, for_update=True)
        refused = None if transition(dep, "authorise") else (dep.id, dep.name, why_not(dep, "authorise"))
        if not refused:
            again = dep.status == "authorised"
            dep.status, dep.authorised_by, dep.authorised_at = "authorised", actor.username, utcnow()
            uow.audit("deployment.authorised", "deployment", dep.id,
                      {"note": note, "self_authorised": dep.created_by == actor.username, "reauthorised": again})
            return describe(uow.session, dep)
    _refused(vigil, actor, *refused[:2], "be authorised", refused[2])


def cancel_deployment(vigil, actor: Actor, deployment_id, reason: str = "") -> dict:
    """Withdraw a draft or authorised deployment (see the module docstring for who may)."""
    with use_case(vigil, actor, "deployment.create" if not actor.can("deployment.authorise") else None) as uow:
        dep = get_deployment(uow.session, deployment_id, for_update=True)
        if not actor.can("deployment.authorise") and dep.created_by != actor.username:
            raise PermissionDenied(f"{actor.username} ({actor.role}) may cancel only deployments they created; "
                                   "a supervisor may cancel any")
        refused = None if transition(dep, "cancel") else (dep.id, dep.name, why_not(dep, "cancel"))
        if not refused:
            previous = dep.status
            dep.status, dep.ended_at = "cancelled", utcnow()
            dep.record = {**(dep.record or {}), "ended_because": f"cancelled by {actor.username}"
                                                                 + (f": {reason}" if reason else "")}
            uow.audit("deployment.cancelled", "deployment", dep.id, {"previous_status": previous, "reason": reason})
            return describe(uow.session, dep)
    _refused(vigil, actor, *refused[:2], "be cancelled", refused[2])


def reject_deployment(vigil, actor: Actor, deployment_id, reason: str) -> dict:
    """A supervisor turns down a plan (draft or authorised) with a reason the planner reads; it
    ends as ``cancelled``, recorded as rejected."""
    if not (reason or "").strip():
        raise VigilError("a rejection needs a reason (--reason) for the person who planned it")
    with use_case(vigil, actor, "deployment.authorise") as uow:
        dep = get_deployment(uow.session, deployment_id, for_update=True)
        refused = None if transition(dep, "cancel") else (dep.id, dep.name, why_not(dep, "cancel"))
        if not refused:
            previous = dep.status
            dep.status, dep.ended_at = "cancelled", utcnow()
            dep.record = {**(dep.record or {}), "ended_because": f"rejected by {actor.username}: {reason.strip()}",
                          "rejected": {"by": actor.username, "reason": reason.strip(), "at": iso(utcnow())}}
            uow.audit("deployment.rejected", "deployment", dep.id, {"previous_status": previous,
                                                                   "reason": reason.strip()})
            return describe(uow.session, dep)
    _refused(vigil, actor, *refused[:2], "be rejected", refused[2])


def place_deployment(vigil, actor: Actor, deployment_id, placement: str) -> dict:
    """Say where a planned deployment's cameras run: ``local`` (one process), ``any`` cluster
    node, or ``site:LABEL``. Only before it starts (a running one is stopped first); for whoever
    may plan deployments (its creator) or authorise them; audited."""
    stored_as = check_placement(placement)
    with use_case(vigil, actor, "deployment.create" if not actor.can("deployment.authorise") else None) as uow:
        dep = get_deployment(uow.session, deployment_id, for_update=True)
        if not actor.can("deployment.authorise") and dep.created_by != actor.username:
            raise PermissionDenied(f"{actor.username} ({actor.role}) may place only deployments they created; "
                                   "a supervisor may place any")
        refused = None if dep.status in ("draft", "authorised") else (
            dep.id, dep.name, "it is running (stop it first)" if dep.status == "running" else why_not(dep, "start"))
        if not refused:
            _check_cluster_sources(dep.sources or [], stored_as)
            previous, dep.placement = dep.placement or "local", stored_as
            uow.audit("deployment.placed", "deployment", dep.id,
                      {"placement": stored_as or "local", "previous": previous})
            return describe(uow.session, dep)
    _refused(vigil, actor, *refused[:2], "be placed", refused[2])


def record_outcomes(vigil, actor: Actor, deployment_id, *, engagements: int | None, arrests: int | None) -> dict:
    if (engagements is not None and engagements < 0) or (arrests is not None and arrests < 0):
        raise VigilError("engagements and arrests are counts: 0 or more")
    with use_case(vigil, actor, "deployment.record") as uow:
        dep = get_deployment(uow.session, deployment_id)
        if engagements is not None:
            dep.engagements = engagements
        if arrests is not None:
            dep.arrests = arrests
        uow.audit("deployment.outcomes_recorded", "deployment", dep.id,
                  {"engagements": dep.engagements, "arrests": dep.arrests})
        return deployment_record(uow.session, dep)


def list_deployments(vigil, actor: Actor, status: str | None = None, *, cursor: str | None = None,
                     limit: int | None = None) -> Page:
    """Deployments newest first, one page at a time; ``status`` keeps one state (``draft``:
    waiting for authorisation)."""
    if status is not None and status not in STATES:
        raise VigilError(f"no deployment state {status!r}; states: {', '.join(STATES)}")
    with use_case(vigil, actor, "deployment.view") as uow:
        now = utcnow()
        query = select(Deployment)
        if status is not None:
            query = query.where(Deployment.status == status)
        return keyset_page(uow.session, query, list_name="deployments", order=[Deployment.id], descending=True,
                           key_of=lambda d: (d.id,), cursor=cursor, limit=limit,
                           item_of=lambda d: {**describe(uow.session, d), "runner_stale": heartbeat_stale(d, now)})


def show_deployment(vigil, actor: Actor, deployment_id) -> dict:
    """The plan, its state (whether a running one's runner still beats) and its record."""
    with use_case(vigil, actor, "deployment.view") as uow:
        dep = get_deployment(uow.session, deployment_id)
        return {**describe(uow.session, dep), "runner_stale": heartbeat_stale(dep),
                "record": deployment_record(uow.session, dep), "cameras": camera_rows(dep)}


def camera_rows(dep: Deployment, now: datetime | None = None) -> list[dict]:
    """Each camera of the deployment: where it runs and how it is doing. A cluster deployment's
    come from its recorder's last look at the nodes (``camera_status``): node, health, lag,
    dropped frames, last heartbeat, or why no node runs it; one run in a single process has no
    per-camera status while it runs (its summary holds the counts when it ends)."""
    now = now or utcnow()
    seen = {c["camera"]: c for c in ((dep.camera_status or {}).get("cameras") or [])}
    summary = {c["camera"]: c for c in ((dep.record or {}).get("summary") or {}).get("cameras", [])}
    rows = []
    for src in dep.sources or []:
        name = src.get("camera")
        row = {**{k: src[k] for k in ("camera", "source", "kind") if k in src}, "node": None, "state": None, "health": None, "lag_s": None, "frames": None,
               "dropped": None, "heartbeat_at": None, "heartbeat_age_s": None, "reason": None}
        if dep.placement and name in seen:
            row.update({k: v for k, v in seen[name].items() if k in row or k in ("site", "since", "faces_seen",
                                                                               "alerts", "fps")})
            beat = as_utc(datetime.fromisoformat(row["heartbeat_at"])) if row.get("heartbeat_at") else None
            row["heartbeat_age_s"] = round((now - beat).total_seconds(), 1) if beat else None
        elif dep.placement:
            row["state"] = "unplaced" if dep.status == "running" else None
            row["reason"] = "no recorder has reported on it yet" if dep.status == "running" else None
        else:
            row["node"] = "one process"
            if name in summary:
                row.update(health=summary[name].get("status"), frames=summary[name].get("frames"),
                           dropped=summary[name].get("dropped"))
        rows.append(row)
    return rows


def deployment_status(vigil, actor: Actor, deployment_id) -> dict:
    """Where each camera of a deployment runs and how it is doing (``vigil deployment status``):
    for a cluster deployment, the node holding it, health, lag, dropped frames and last
    heartbeat, or why it is not placed (no node of its site, every node at capacity)."""
    with use_case(vigil, actor, "deployment.view") as uow:
        dep = get_deployment(uow.session, deployment_id)
        now = utcnow()
        status, cameras = dep.camera_status or {}, camera_rows(dep, now)
        return {"id": dep.id, "name": dep.name, "status": dep.status, "placement": dep.placement or "local",
                "runner_stale": heartbeat_stale(dep, now), "heartbeat_at": iso(dep.heartbeat_at),
                "reported_at": status.get("updated_at"), "nodes": status.get("nodes", []), "cameras": cameras,
                "unplaced": [c["camera"] for c in cameras if c["state"] == "unplaced"]}


def get_deployment_record(vigil, actor: Actor, deployment_id) -> dict:
    """The published record (the figures the Met publishes, and a few more)."""
    with use_case(vigil, actor, "deployment.view") as uow:
        return deployment_record(uow.session, get_deployment(uow.session, deployment_id))
