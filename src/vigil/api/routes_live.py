"""Deployments, alerts, adjudication, and the live alert stream (Server-Sent Events).

Thin: each route authenticates (``current_actor``), translates, and calls a service, which
checks the permission (403), runs the transaction and writes the audit entry."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from vigil.api.auth import current_actor
from vigil.api.responses import (
    AlertDecided, AlertDetail, AlertListed, AuthorisationView, Deployment, DeploymentCreated, DeploymentDetail,
    DeploymentListed, DeploymentRecord, DeploymentStopped, Page,
)
from vigil.api.schemas import (
    JPEG, MAX_ID, AfterId, AuthoriseIn, Cursor, Limit, CancelIn, DecisionIn, DeploymentIn, DeploymentState, Id, OutcomesIn,
    PlaceIn, RejectIn, RunIn,
)
from vigil.services import Actor
from vigil.services.alerts import alert_image, alerts_after, decide, latest_alert_id, list_alerts, read_clip, show_alert
from vigil.services.authorisation_view import authorisation_view
from vigil.services.deployments import (
    authorise_deployment, cancel_deployment, create_deployment, list_deployments, place_deployment, record_outcomes,
    reject_deployment, show_deployment,
)
from vigil.services.live_runs import start_deployment, stop_deployment

router = APIRouter(prefix="/api", tags=["live"])


@router.get("/deployments", response_model=Page[DeploymentListed], response_model_exclude_unset=True)
def deployments(request: Request, status: Annotated[DeploymentState | None, Query(
        description="only this state (draft: waiting for authorisation)")] = None,
        limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
    return list_deployments(request.app.state.vigil, actor, status, cursor=cursor, limit=limit).as_dict()


@router.get("/deployments/{dep_id}/authorisation", response_model=AuthorisationView,
            response_model_exclude_unset=True)
def authorisation(dep_id: Id, request: Request, actor: Actor = Depends(current_actor)):
    """What authorising the plan means: watchlists with their sizes, categories and state; the
    threshold, expected false alerts and misses per category; window, cameras, legal basis."""
    return authorisation_view(request.app.state.vigil, actor, dep_id)


@router.post("/deployments/{dep_id}/reject", response_model=Deployment, response_model_exclude_unset=True)
def reject(dep_id: Id, body: RejectIn, request: Request, actor: Actor = Depends(current_actor)):
    """Turn down a plan with a reason; it ends as cancelled, recorded as rejected."""
    return reject_deployment(request.app.state.vigil, actor, dep_id, body.reason)


@router.post("/deployments", status_code=201, response_model=DeploymentCreated, response_model_exclude_unset=True)
def create(body: DeploymentIn, request: Request, actor: Actor = Depends(current_actor)):
    return create_deployment(request.app.state.vigil, actor, name=body.name, location=body.location,
                             sources=[c.model_dump() for c in body.cameras], watchlists=body.watchlists,
                             window_start=body.window_start, window_end=body.window_end,
                             legal_basis=body.legal_basis, purpose=body.purpose,
                             false_alert_rate=body.false_alert_rate, category_rates=body.category_rates,
                             trial=body.trial, placement=body.placement)


@router.get("/deployments/{dep_id}", response_model=DeploymentDetail, response_model_exclude_unset=True)
def show(dep_id: Id, request: Request, actor: Actor = Depends(current_actor)):
    data = show_deployment(request.app.state.vigil, actor, dep_id)
    data["live"] = request.app.state.live.status(dep_id)
    return data


@router.post("/deployments/{dep_id}/authorise", response_model=Deployment, response_model_exclude_unset=True)
def authorise(dep_id: Id, body: AuthoriseIn, request: Request, actor: Actor = Depends(current_actor)):
    return authorise_deployment(request.app.state.vigil, actor, dep_id, body.note)


@router.post("/deployments/{dep_id}/place", response_model=Deployment, response_model_exclude_unset=True)
def place(dep_id: Id, body: PlaceIn, request: Request, actor: Actor = Depends(current_actor)):
    """Say where a planned deployment's cameras run (before it starts): local, any cluster node, site:LABEL."""
    return place_deployment(request.app.state.vigil, actor, dep_id, body.placement)


@router.post("/deployments/{dep_id}/cancel", response_model=Deployment, response_model_exclude_unset=True)
def cancel(dep_id: Id, request: Request, body: CancelIn | None = None, actor: Actor = Depends(current_actor)):
    return cancel_deployment(request.app.state.vigil, actor, dep_id, body.reason if body else "")


@router.post("/deployments/{dep_id}/start", response_model=Deployment, response_model_exclude_unset=True)
def start(dep_id: Id, body: RunIn, request: Request, actor: Actor = Depends(current_actor)):
    vigil = request.app.state.vigil
    data = start_deployment(vigil, actor, dep_id)
    request.app.state.live.start(vigil, actor, dep_id, fast=body.fast, max_seconds=body.max_seconds)
    return data


@router.post("/deployments/{dep_id}/stop", response_model=DeploymentStopped, response_model_exclude_unset=True)
def stop(dep_id: Id, request: Request, actor: Actor = Depends(current_actor)):
    """Stops the deployment wherever it runs: in this server at once, in another process at its
    runner's next heartbeat; one whose runner died is marked failed and its snapshot erased."""
    return stop_deployment(request.app.state.vigil, actor, dep_id, stop_local=request.app.state.live.stop,
                           wait_seconds=12.0)


@router.post("/deployments/{dep_id}/outcomes", response_model=DeploymentRecord)
def outcomes(dep_id: Id, body: OutcomesIn, request: Request, actor: Actor = Depends(current_actor)):
    return record_outcomes(request.app.state.vigil, actor, dep_id, engagements=body.engagements, arrests=body.arrests)


@router.get("/alerts", response_model=Page[AlertListed])
def alerts(request: Request, deployment_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
           subject_id: Annotated[str | None, Query(min_length=1, max_length=40,
                                                   description="one subject's alerts (their history)")] = None,
           undecided: bool = False, decision: Annotated[Literal["confirmed", "false_alert", "unverified"] | None,
                                                       Query(description="only alerts with this decision")] = None,
           after_id: AfterId = 0, limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
    """Alerts newest first, one page at a time."""
    return list_alerts(request.app.state.vigil, actor, deployment_id=deployment_id, subject_id=subject_id,
                       undecided_only=undecided, decision=decision, after_id=after_id, cursor=cursor,
                       limit=limit).as_dict()


@router.post("/alerts/{alert_id}/decision", response_model=AlertDecided)
def decision(alert_id: Id, body: DecisionIn, request: Request, actor: Actor = Depends(current_actor)):
    return decide(request.app.state.vigil, actor, alert_id, decision=body.decision, outcome=body.outcome,
                  notes=body.notes, case_ref=body.case_ref, reason=body.reason)


@router.get("/alerts/{alert_id}/{which}.jpg", response_class=Response, responses=JPEG)
def image(alert_id: Id, which: Literal["probe", "frame", "watchlist", "probe_face", "watchlist_face"],
          request: Request, actor: Actor = Depends(current_actor)):
    """An alert's images, decrypted in memory, never cached. ``probe``: the face the camera saw
    as stored (its box plus a margin, cut from the redacted frame); ``frame``: the camera frame
    with everything but the alerted face washed out (bystanders unrecognisable); ``watchlist``:
    the watchlist photograph as enrolled, whole. ``probe_face`` and ``watchlist_face``: the two
    faces aligned as the recogniser aligns them (eyes, nose and mouth on the same points), with
    a margin, both 448 x 448, for comparing side by side."""
    data = alert_image(request.app.state.vigil, actor, alert_id, which)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/alerts/{alert_id}/clip.avi", response_class=Response,
            responses={200: {"content": {"video/x-msvideo": {"schema": {"type": "string", "format": "binary"}}}}})
def clip(alert_id: Id, request: Request, actor: Actor = Depends(current_actor)):
    """The evidence clip (everything but the alerted face washed out), from memory. A download is an export: recorded, audited."""
    client = request.client.host if request.client else "unknown"
    data = read_clip(request.app.state.vigil, actor, alert_id, destination=f"API download by {actor.username} ({client})")
    return Response(data, media_type="video/x-msvideo",
                    headers={"Cache-Control": "no-store",
                             "Content-Disposition": f'attachment; filename="alert-{alert_id}.avi"'})


@router.get("/alerts/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def stream(request: Request, after_id: AfterId = 0, once: bool = False, actor: Actor = Depends(current_actor)):
    """Server-Sent Events: each new alert as an ``alert`` event, a heartbeat every 15 s.
    ``once`` returns what is new and closes (for scripts and tests)."""
    vigil = request.app.state.vigil
    registry = request.app.state.live
    resume = request.headers.get("last-event-id", "")
    # a reconnecting EventSource continues where it stopped
    if resume.isascii() and resume.isdigit() and int(resume) <= MAX_ID:
        after_id = max(after_id, int(resume))
    # the first query runs before the response starts, so a refused role gets its 403
    latest = await asyncio.to_thread(latest_alert_id, vigil, actor)

    async def events():
        last = after_id or latest
        beat = 0.0
        while not await request.is_disconnected():
            new = await asyncio.to_thread(alerts_after, vigil, actor, last)
            for alert in new:
                last = max(last, alert["id"])
                yield f"id: {alert['id']}\nevent: alert\ndata: {json.dumps(alert)}\n\n"
            if once:
                yield ": end\n\n"
                return
            counter = registry.alert_counter
            waited = 0.0
            while registry.alert_counter == counter and waited < 1.0:
                await asyncio.sleep(0.1)
                waited += 0.1
            beat += waited
            if beat >= 15:
                beat = 0.0
                yield ": heartbeat\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def alert(alert_id: Id, request: Request, actor: Actor = Depends(current_actor)):
    """One alert with its latest decision and every earlier one (``history``). Declared
    after ``/alerts/stream`` so that that path is never read as an id."""
    return show_alert(request.app.state.vigil, actor, alert_id)
