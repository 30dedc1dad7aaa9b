"""Running a deployment: start (rules checked, watchlists frozen), the runner that ties a
running deployment to the live runtime, and its three ways out: ended (sources over, window
closed, stopped), failed (a source missing, a crash, a runner that stopped beating), both of
which erase the frozen snapshot, and a stop requested from any process.

The runtime (:mod:`vigil.live.runner`) touches no database; :class:`StoreRecorder` is its
recorder here: alerts and clips go to the encrypted blob store with their audit entries, and
every few seconds a heartbeat refreshes ``deployments.heartbeat_at`` and reads back whether a
stop was requested (``vigil deployment stop`` or ``POST /api/deployments/{id}/stop`` from
another process).

A deployment placed on the cluster (``placement``: ``any`` or ``site:LABEL``) does not run
here: ``vigil node`` processes run its cameras, one :class:`~vigil.live.runner.LiveRunner`
per camera they hold (:func:`cluster_work`, :func:`camera_run_setup`, both read only), and
the cluster's recorder writes what they publish through the same :class:`StoreRecorder`
(an alert keyed by the id its node gave it, so a redelivery is recorded once) and mirrors
each camera's status into the deployment (:meth:`StoreRecorder.cluster_heartbeat`).
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vigil.engine.calibration import mean_template
from vigil.engine.fusion import template_split
from vigil.errors import ConflictError, PolicyError, VigilError
from vigil.governance.permissions import SYSTEM, Actor
from vigil.live.alerts import AlertEvidence, AlertSink, JsonLinesSink, WebhookSink  # noqa: F401 (front ends' sinks)
from vigil.live.matcher import WatchlistEntry, WatchlistMatcher
from vigil.live.runner import LiveRunner, RunOptions, RunResult, RunSetup
from vigil.live.shot_embedding import ShotEmbedder
from vigil.services.alerts import alert_payload
from vigil.services.cameras import SourceRefused, sources_for_run
from vigil.services.deployments import FINAL, heartbeat_stale, transition, why_not
from vigil.services.unit import refuse, use_case
from vigil.store.collections import is_expired
from vigil.store.deployments import deployment_record, describe, get_deployment
from vigil.store.schema import Alert, Collection, Deployment
from vigil.store.snapshots import erase_entries, freeze, load_entries, total_size
from vigil.timeutil import as_utc, iso, utcnow


class _Refusal(Exception):
    """Why a start is refused: its state (409, ``ConflictError``) or a rule (422, ``PolicyError``)."""

    def __init__(self, dep: Deployment, why: str, error: type[VigilError] = PolicyError):
        super().__init__(why)
        self.dep_id, self.dep_name, self.why, self.error = dep.id, dep.name, why, error


def start_deployment(vigil, actor: Actor, deployment_id) -> dict:
    """Check every rule, freeze the watchlists, mark the deployment running. A refusal is
    audited with its real reason."""
    try:
        with use_case(vigil, actor, "deployment.run") as uow:
            dep = get_deployment(uow.session, deployment_id, for_update=True)
            now = utcnow()
            if transition(dep, "start") is None:
                why = why_not(dep, "start")
                if heartbeat_stale(dep, now):
                    why += (f", but its runner has sent no heartbeat since {iso(dep.heartbeat_at or dep.started_at)}"
                            f" (stop it with `vigil deployment stop {dep.id}`)")
                # a plan waiting for authorisation is refused by a rule; an ended or running one by its state
                raise _Refusal(dep, why, PolicyError if dep.status == "draft" else ConflictError)
            if not dep.authorised_by:
                raise _Refusal(dep, "it has not been authorised by a supervisor")
            if as_utc(dep.window_start) and now < as_utc(dep.window_start):
                raise _Refusal(dep, f"its window opens at {iso(dep.window_start)}")
            if as_utc(dep.window_end) and now >= as_utc(dep.window_end):
                raise _Refusal(dep, f"its window closed at {iso(dep.window_end)}")
            try:  # the cameras are checked again: still registered, files still under the media root
                sources_for_run(vigil, actor, uow.session, dep.sources)
            except SourceRefused as exc:
                raise _Refusal(dep, str(exc)) from None
            snapshot_ids, notes, pack = [], [], None
            for wid in dep.watchlist_ids:
                coll = uow.session.get(Collection, wid)
                if coll is None:
                    raise _Refusal(dep, f"watchlist {wid} no longer exists")
                if is_expired(coll):
                    raise _Refusal(dep, f"watchlist {coll.name!r} has expired")
                if not coll.authorised_by:
                    if not dep.is_trial:
                        raise _Refusal(dep, f"watchlist {coll.name!r} is not authorised (or changed since)")
                    notes.append(f"trial with unauthorised watchlist {coll.name!r}")
                pack = pack or coll.pack
                references, combine = reference_rule(vigil, coll.pack)
                snapshot_ids.append(freeze(vigil.store, uow.session, actor.username, coll, dep.id,
                                           references=references, combine=combine).id)
            dep.snapshot_ids = snapshot_ids
            dep.watchlist_size = total_size(uow.session, snapshot_ids)
            dep.status, dep.started_at, dep.heartbeat_at, dep.stop_requested_by = "running", now, now, None
            dep.record = {**(dep.record or {}), "notes": notes, "pack": pack}
            uow.audit("deployment.started", "deployment", dep.id,
                      {"snapshots": snapshot_ids, "watchlist_size": dep.watchlist_size, "notes": notes})
            return describe(uow.session, dep)
    except _Refusal as r:
        refuse(vigil, actor, "deployment.refused", "deployment", r.dep_id, r.why, {"action": "start"}, error=r.error,
               message=f"deployment {r.dep_id} ({r.dep_name}) refused to start: {r.why}")


def end_deployment(vigil, actor: Actor | str, deployment_id, summary: dict, because: str = "") -> dict:
    """The run is over: counts stored, the frozen snapshot erased (retention), the record
    written. A deployment already stopped from elsewhere keeps its state and gains the counts."""
    with use_case(vigil, SYSTEM if isinstance(actor, str) else actor) as uow:
        dep = get_deployment(uow.session, deployment_id, for_update=True)
        dep.frames = int(summary.get("frames", 0))
        dep.frames_dropped = int(summary.get("frames_dropped", 0))
        dep.faces_seen = int(summary.get("faces_seen", 0))
        dep.record = {**(dep.record or {}), "summary": {k: v for k, v in summary.items() if k != "type"}}
        details = {"faces_seen": dep.faces_seen, "alerts": summary.get("alerts", 0), "frames": dep.frames}
        if transition(dep, "end") is None:  # stopped (ended or failed) from another process meanwhile
            uow.audit("deployment.run_summary_recorded", "deployment", dep.id, {**details, "status": dep.status})
            return deployment_record(uow.session, dep)
        because = because or (f"stop requested by {dep.stop_requested_by}" if dep.stop_requested_by else
                              summary.get("stopped_because") or "its sources ended or its window closed")
        removed = erase_entries(uow.session, dep.snapshot_ids) if vigil.settings.retention.snapshot_delete_on_end else 0
        dep.status, dep.ended_at, dep.heartbeat_at = "ended", utcnow(), None
        dep.record = {**dep.record, "ended_because": because}
        uow.audit("deployment.ended", "deployment", dep.id,
                  {**details, "because": because, "snapshot_entries_deleted": removed})
        return deployment_record(uow.session, dep)


def fail_deployment(vigil, actor: Actor, deployment_id, cause: str) -> dict:
    """A running deployment that cannot go on: failed, its frozen snapshot (biometric copies)
    erased at once whatever the retention setting, and the cause in the audit trail."""
    with use_case(vigil, actor) as uow:
        dep = get_deployment(uow.session, deployment_id, for_update=True)
        if transition(dep, "fail") is None:
            return describe(uow.session, dep)
        removed = erase_entries(uow.session, dep.snapshot_ids)
        dep.status, dep.ended_at, dep.heartbeat_at = "failed", utcnow(), None
        dep.record = {**(dep.record or {}), "ended_because": cause}
        uow.audit("deployment.failed", "deployment", dep.id, {"cause": cause, "snapshot_entries_deleted": removed})
        return describe(uow.session, dep)


def stop_deployment(vigil, actor: Actor, deployment_id, *, stop_local=None, wait_seconds: float = 20.0) -> dict:
    """Stop a running deployment wherever it runs. ``stop_local(id) -> bool`` stops a runner in
    this process (the server's); otherwise the request is recorded and the runner, wherever it
    is, stops at its next heartbeat. A runner that no longer beats (its process died) is marked
    failed here and now, its snapshot erased, the reason recorded."""
    with use_case(vigil, actor, "deployment.run") as uow:
        dep = get_deployment(uow.session, deployment_id, for_update=True)
        dep_id, name = dep.id, dep.name
        stale = heartbeat_stale(dep)
        if dep.status == "running" and not stale:
            dep.stop_requested_by = actor.username
            uow.audit("deployment.stop_requested", "deployment", dep.id, {})
    if dep.status in FINAL:  # stopping is idempotent: a run that is over stays as it ended
        return {**_show(vigil, dep_id), "stop": f"nothing to stop: {why_not(dep, 'stop')}"}
    if dep.status != "running":
        refuse(vigil, actor, "deployment.refused", "deployment", dep_id, f"it has not started ({dep.status})",
               {"action": "stop"},
               message=f"deployment {dep_id} ({name}) cannot be stopped: it has not started "
                       f"({dep.status}); cancel it instead")
    if stale:
        since = iso(dep.heartbeat_at or dep.started_at)
        fail_deployment(vigil, actor, dep_id, f"stopped by {actor.username}: its runner has sent no heartbeat "
                                              f"since {since} (its process died)")
        return {**_show(vigil, dep_id), "stop": "marked failed: its runner was no longer running"}
    if stop_local is not None and stop_local(dep_id):
        return {**_show(vigil, dep_id), "stop": "stopped"}
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        shown = _show(vigil, dep_id)
        if shown["status"] != "running":
            return {**shown, "stop": "stopped"}
        time.sleep(0.5)
    return {**_show(vigil, dep_id), "stop": "requested: the runner stops at its next heartbeat"}


def _show(vigil, dep_id: int) -> dict:
    with vigil.store.session() as session:  # read only: the caller's permission was checked
        dep = get_deployment(session, dep_id)
        return {**describe(session, dep), "record": deployment_record(session, dep)}


class StoreRecorder:
    """The runtime's recorder: alerts and clips encrypted in the store, audited; heartbeats."""

    def __init__(self, vigil, deployment_id: int, deployment_name: str):
        self.vigil, self.deployment_id, self.deployment_name = vigil, deployment_id, deployment_name
        self._watchlist_images: dict[str, bytes | None] = {}

    def on_alert(self, ev: AlertEvidence, *, alert_uid: str | None = None, raised_at=None,
                 node: str | None = None) -> dict:
        """Store one alert. ``alert_uid`` (an alert a cluster node raised, with its time and the
        node's name): an alert already stored under that id is not stored again; its payload
        comes back with ``already_recorded``."""
        if alert_uid:
            existing = self._by_uid(alert_uid)
            if existing is not None:
                return existing
        blobs = self.vigil.store.blobs
        wl_image = self._watchlist_image(ev.entry)
        try:
            with use_case(self.vigil, SYSTEM) as uow:
                alert = Alert(deployment_id=self.deployment_id, created_at=raised_at or utcnow(), camera=ev.camera,
                              source_time=ev.source_time, track_id=ev.track_id, subject_id=ev.entry.subject_id,
                              subject_name=ev.entry.name, category=ev.entry.category,
                              watchlist_id=ev.entry.watchlist_id, score=ev.score, threshold=ev.threshold, fmr=ev.fmr,
                              probe_blob_id=blobs.put(uow.session, "alert_probe", ev.probe_jpeg),
                              frame_blob_id=blobs.put(uow.session, "alert_frame", ev.frame_jpeg),
                              watchlist_blob_id=blobs.put(uow.session, "alert_watchlist_image", wl_image)
                              if wl_image else None, runner_up=ev.runner_up, alert_uid=alert_uid)
                uow.session.add(alert)
                uow.session.flush()
                uow.audit("alert.raised", "alert", alert.id,
                          {"deployment_id": self.deployment_id, "subject_id": ev.entry.subject_id,
                           "score": round(ev.score, 4), "camera": ev.camera, "track_id": ev.track_id,
                           "redaction": ev.redaction,
                           **({"lookalike_of": ev.runner_up["subject_id"]}
                              if ev.runner_up and ev.runner_up["lookalike"] else {}),
                           **({"node": node, "alert_uid": alert_uid} if alert_uid else {})})
                return alert_payload(alert, self.deployment_name)
        except IntegrityError:  # another recorder stored the same alert a moment ago
            existing = self._by_uid(alert_uid) if alert_uid else None
            if existing is None:
                raise
            return existing

    def _by_uid(self, alert_uid: str) -> dict | None:
        with self.vigil.store.session() as session:  # read only
            alert = session.scalar(select(Alert).where(Alert.alert_uid == alert_uid))
            return None if alert is None else {**alert_payload(alert, self.deployment_name), "already_recorded": True}

    def on_clip(self, alert_id: int | str, data: bytes, frames: int, redaction: dict) -> bool:
        """Store an alert's evidence clip (``alert_id``: the row's id, or the id a cluster node
        gave the alert). False when there is no such alert (yet); a clip already stored stays."""
        with use_case(self.vigil, SYSTEM) as uow:
            alert = (uow.session.scalar(select(Alert).where(Alert.alert_uid == alert_id))
                     if isinstance(alert_id, str) else uow.session.get(Alert, alert_id))
            if alert is None:
                return False
            if alert.clip_blob_id:
                return True
            alert.clip_blob_id = self.vigil.store.blobs.put(uow.session, "alert_clip", data)
            uow.audit("alert.clip_recorded", "alert", alert.id, {"frames": frames, "redaction": redaction})
            return True

    def heartbeat(self) -> bool:
        with self.vigil.store.session() as session:  # no audit: a heartbeat is not an action
            dep = session.get(Deployment, self.deployment_id)
            if dep is None or dep.status != "running":
                return False
            dep.heartbeat_at = utcnow()
            return not dep.stop_requested_by

    def cluster_heartbeat(self, camera_status: dict, *, record: dict | None = None,
                          events: list[tuple[str, dict]] = ()) -> dict:
        """The cluster recorder's beat for a deployment its nodes run: the cameras as it sees
        them (node, health, lag, dropped frames, or why none is placed) stored on the
        deployment, ``record`` merged into its record (thresholds, model), ``events`` audited
        (a camera left unplaced, placed again, taken over). Returns the deployment's state and
        whether a stop was requested."""
        with use_case(self.vigil, SYSTEM) as uow:
            dep = uow.session.get(Deployment, self.deployment_id)
            if dep is None:
                return {"status": "gone", "stop_requested_by": None}
            if dep.status == "running":
                dep.heartbeat_at, dep.camera_status = utcnow(), camera_status
                if record:
                    dep.record = {**(dep.record or {}), **record}
                for action, details in events:
                    uow.audit(action, "deployment", dep.id, details)
            return {"status": dep.status, "stop_requested_by": dep.stop_requested_by}

    def _watchlist_image(self, entry: WatchlistEntry) -> bytes | None:
        if not entry.image_blob_id:
            return None
        if entry.image_blob_id not in self._watchlist_images:
            try:
                self._watchlist_images[entry.image_blob_id] = self.vigil.store.blobs.get(entry.image_blob_id)
            except Exception:  # the image was erased meanwhile: the alert simply has no copy
                self._watchlist_images[entry.image_blob_id] = None
        return self._watchlist_images[entry.image_blob_id]


def reference_rule(vigil, pack: str | None):
    """(reference photos per entry, how they combine) for a watchlist on this pack: up to
    ``live.references`` photos of a subject averaged into one mean template, as far as the
    pack has calibration tables for such entries (docs/evaluation.md); else one entry per photo."""
    limit = vigil.settings.live.references
    if limit <= 1:
        return 1, None
    engine = vigil.engine(pack)
    references = engine.pack.supported_references(limit)
    split = template_split(engine.pack.embedder)
    return references, (lambda vectors: mean_template(vectors, split)) if references > 1 else None


class DeploymentRunner:
    """Ties a running deployment to the live runtime. If the runtime cannot be built (a source
    missing, a model failing to load) or the run crashes, the deployment is failed with the
    cause and its snapshot erased; otherwise it ends when the run does."""

    def __init__(self, vigil, actor: Actor, deployment_id, sinks: list[AlertSink], options: RunOptions):
        self.vigil, self.actor, self.options = vigil, actor, options
        with use_case(vigil, actor, "deployment.run") as uow:
            dep = get_deployment(uow.session, deployment_id)
            if dep.status != "running":
                raise ConflictError(f"deployment {dep.id} ({dep.name}) cannot run: {why_not(dep, 'run')}"
                                  if dep.status != "authorised" else
                                  f"deployment {dep.id} ({dep.name}) has not been started")
            if dep.placement:
                raise ConflictError(f"deployment {dep.id} ({dep.name}) is placed on the cluster ({dep.placement}): "
                                  f"vigil node processes run its cameras, not this process; see "
                                  f"`vigil deployment status {dep.id}`")
            self.deployment_id, name = dep.id, dep.name
            pack = (dep.record or {}).get("pack")
            if pack is None:
                coll = uow.session.get(Collection, dep.watchlist_ids[0])
                pack = coll.pack if coll is not None else None
            frozen, vectors = load_entries(vigil.store, uow.session, dep.snapshot_ids)
            sources, window_end = list(dep.sources), as_utc(dep.window_end)
            rate, category_rates = dep.false_alert_rate, dict(dep.category_rates or {})
        entries = [WatchlistEntry(e.subject_id, e.name, e.category, e.watchlist_id, e.image_blob_id, e.references)
               for e in frozen]
        try:
            engine = vigil.engine(pack)
            shots = ShotEmbedder(engine.pack)
            matcher = WatchlistMatcher(entries, vectors, engine.pack.calibration, false_alert_rate=rate,
                                       category_rates=category_rates, split=shots.split,
                                       calibration_for=engine.pack.calibration_for)
            with use_case(vigil, actor) as uow:
                dep = get_deployment(uow.session, self.deployment_id)
                sources = sources_for_run(vigil, actor, uow.session, sources)
                dep.heartbeat_at = utcnow()
                dep.record = {**(dep.record or {}), "thresholds": matcher.thresholds(), "model_id": engine.model_id,
                              "entries": matcher.size, "heartbeat_every": options.heartbeat_every}
            setup = RunSetup(self.deployment_id, name, sources, engine, matcher, shots, vigil.settings.live,
                             vigil.settings.quality, window_end)
            self.runtime = LiveRunner(setup, StoreRecorder(vigil, self.deployment_id, name), sinks, options)
        except Exception as exc:
            fail_deployment(vigil, actor, self.deployment_id, f"could not start: {exc}")
            raise

    # the runtime's parts, for the server's status page and the tests
    worker = property(lambda self: self.runtime.worker)
    pipelines = property(lambda self: self.runtime.pipelines)
    readers = property(lambda self: self.runtime.readers)
    alerts = property(lambda self: self.runtime.alerts)

    def stop(self, because: str = "stopped") -> None:
        self.runtime.stop(because)

    def run(self) -> RunResult:
        try:
            result = self.runtime.run()
        except BaseException as exc:  # a crash (or Ctrl-C twice) must not leave it "running"
            fail_deployment(self.vigil, self.actor, self.deployment_id,
                            f"the run crashed: {exc.__class__.__name__}: {exc}")
            raise
        summary = result.summary
        if summary["all_cameras_failed"] and not summary["frames"]:
            errors = "; ".join(f"{c['camera']}: {c['error']}" for c in summary["cameras"])
            fail_deployment(self.vigil, self.actor, self.deployment_id, f"every camera failed: {errors}")
        else:
            end_deployment(self.vigil, self.actor, self.deployment_id, summary)
        self.runtime.announce(summary)
        return result


def run_deployment(vigil, actor: Actor, deployment_id, sinks: list[AlertSink], options: RunOptions) -> RunResult:
    return DeploymentRunner(vigil, actor, deployment_id, sinks, options).run()


# -- deployments whose cameras run on cluster nodes -------------------------------------------
def placement_admits(placement: str | None, site: str | None) -> bool:
    """Whether a node of ``site`` (None: no site label) may run a deployment placed so."""
    return placement == "any" or (bool(site) and placement == f"site:{site}")


def placed_on_cluster(vigil, deployment_id) -> str | None:
    """The deployment's cluster placement (None: it runs in one process)."""
    with vigil.store.session() as session:  # read only: the caller acts on a deployment it may run
        return get_deployment(session, deployment_id).placement


def cluster_work(vigil, site: str | None = None, *, every_site: bool = False) -> list[dict]:
    """The running deployments a node of ``site`` may take cameras of (``every_site``: all
    those placed on the cluster, the recorder's view), with their cameras, when they started
    (a file camera resumes where a live one would be), their window's end and whether a stop
    was requested. A poll: read only, no audit."""
    with vigil.store.session() as session:
        deps = session.scalars(select(Deployment).where(Deployment.status == "running",
                                                        Deployment.placement.is_not(None))
                               .order_by(Deployment.id)).all()
        return [{"id": d.id, "name": d.name, "placement": d.placement, "cameras": [s["camera"] for s in d.sources],
                 "started_at": as_utc(d.started_at), "window_end": as_utc(d.window_end),
                 "stop_requested": bool(d.stop_requested_by), "heartbeat_every": (d.record or {}).get(
                     "heartbeat_every")} for d in deps if every_site or placement_admits(d.placement, site)]


def camera_run_setup(vigil, deployment_id: int, camera: str) -> RunSetup:
    """What a node needs to run one camera of a running cluster deployment: its frozen
    watchlist (decrypted in memory), the engine, the matcher at the deployment's thresholds
    and the camera's source, checked again against the registered cameras. Read only;
    raises :class:`PolicyError` when the deployment is not running on the cluster or the
    camera may not be read."""
    with vigil.store.session() as session:
        dep = get_deployment(session, deployment_id)
        if dep.status != "running" or not dep.placement:
            raise PolicyError(f"deployment {dep.id} ({dep.name}) is not running on the cluster ({dep.status})")
        source = [s for s in dep.sources if s.get("camera") == camera]
        if not source:
            raise PolicyError(f"deployment {dep.id} ({dep.name}) has no camera {camera!r}")
        try:
            sources = sources_for_run(vigil, SYSTEM, session, source)
        except SourceRefused as exc:
            raise PolicyError(str(exc)) from None
        pack = (dep.record or {}).get("pack")
        frozen, vectors = load_entries(vigil.store, session, dep.snapshot_ids)
        name, window_end = dep.name, as_utc(dep.window_end)
        rate, category_rates = dep.false_alert_rate, dict(dep.category_rates or {})
    entries = [WatchlistEntry(e.subject_id, e.name, e.category, e.watchlist_id, e.image_blob_id, e.references)
               for e in frozen]
    engine = vigil.engine(pack)
    shots = ShotEmbedder(engine.pack)
    matcher = WatchlistMatcher(entries, vectors, engine.pack.calibration, false_alert_rate=rate,
                               category_rates=category_rates, split=shots.split,
                               calibration_for=engine.pack.calibration_for)
    return RunSetup(deployment_id, name, sources, engine, matcher, shots, vigil.settings.live, vigil.settings.quality,
                    window_end)
