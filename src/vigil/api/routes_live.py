"""Deployments, alerts, adjudication, and the live alert stream (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from vigil.api.auth import permission
from vigil.api.schemas import AuthoriseIn, DecisionIn, DeploymentIn, OutcomesIn, RunIn
from vigil.errors import NotFoundError
from vigil.governance.permissions import Actor
from vigil.live.adjudication import decide, get_alert, list_alerts
from vigil.live.deployments import (
    authorise_deployment, create_deployment, deployment_record, describe, get_deployment, list_deployments,
    record_outcomes, start_deployment,
)

router = APIRouter(prefix="/api", tags=["live"])


@router.get("/deployments")
def deployments(request: Request, actor: Actor = Depends(permission("deployment.view"))):
    return list_deployments(request.app.state.vigil, actor)


@router.post("/deployments", status_code=201)
def create(body: DeploymentIn, request: Request, actor: Actor = Depends(permission("deployment.create"))):
    return create_deployment(request.app.state.vigil, actor, name=body.name, location=body.location,
                             sources=[c.model_dump() for c in body.cameras], watchlists=body.watchlists,
                             window_start=body.window_start, window_end=body.window_end,
                             legal_basis=body.legal_basis, purpose=body.purpose,
                             false_alert_rate=body.false_alert_rate, category_rates=body.category_rates,
                             trial=body.trial)


@router.get("/deployments/{dep_id}")
def show(dep_id: int, request: Request, actor: Actor = Depends(permission("deployment.view"))):
    vigil = request.app.state.vigil
    with vigil.store.session() as session:
        dep = get_deployment(session, dep_id)
        data = {**describe(session, dep), "record": deployment_record(session, dep)}
    data["live"] = request.app.state.live.status(dep_id)
    return data


@router.post("/deployments/{dep_id}/authorise")
def authorise(dep_id: int, body: AuthoriseIn, request: Request,
              actor: Actor = Depends(permission("deployment.authorise"))):
    return authorise_deployment(request.app.state.vigil, actor, dep_id, body.note)


@router.post("/deployments/{dep_id}/start")
def start(dep_id: int, body: RunIn, request: Request, actor: Actor = Depends(permission("deployment.run"))):
    vigil = request.app.state.vigil
    data = start_deployment(vigil, actor, dep_id)
    request.app.state.live.start(vigil, actor, dep_id, fast=body.fast, max_seconds=body.max_seconds)
    return data


@router.post("/deployments/{dep_id}/stop")
def stop(dep_id: int, request: Request, actor: Actor = Depends(permission("deployment.run"))):
    if not request.app.state.live.stop(dep_id):
        raise NotFoundError(f"deployment {dep_id} is not running in this server")
    with request.app.state.vigil.store.session() as session:
        return deployment_record(session, get_deployment(session, dep_id))


@router.post("/deployments/{dep_id}/outcomes")
def outcomes(dep_id: int, body: OutcomesIn, request: Request, actor: Actor = Depends(permission("deployment.record"))):
    return record_outcomes(request.app.state.vigil, actor, dep_id, engagements=body.engagements, arrests=body.arrests)


@router.get("/alerts")
def alerts(request: Request, deployment_id: int | None = None, undecided: bool = False, after_id: int = 0,
           actor: Actor = Depends(permission("alert.view"))):
    return list_alerts(request.app.state.vigil, actor, deployment_id=deployment_id, undecided_only=undecided,
                       after_id=after_id)


@router.post("/alerts/{alert_id}/decision")
def decision(alert_id: int, body: DecisionIn, request: Request, actor: Actor = Depends(permission("alert.decide"))):
    return decide(request.app.state.vigil, actor, alert_id, decision=body.decision, outcome=body.outcome,
                  notes=body.notes, case_ref=body.case_ref)


@router.get("/alerts/{alert_id}/{which}.jpg")
def alert_image(alert_id: int, which: str, request: Request, actor: Actor = Depends(permission("alert.view"))):
    """probe | frame | watchlist: decrypted in memory, never cached."""
    vigil = request.app.state.vigil
    alert = get_alert(vigil, actor, alert_id)
    blob = {"probe": alert.probe_blob_id, "frame": alert.frame_blob_id, "watchlist": alert.watchlist_blob_id}.get(which)
    if not blob:
        raise NotFoundError("no such image (deleted by retention, or not recorded)")
    return Response(vigil.store.blobs.get(blob), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/alerts/{alert_id}/clip.avi")
def alert_clip(alert_id: int, request: Request, actor: Actor = Depends(permission("alert.export"))):
    """The evidence clip (other faces blurred), from memory. A download is an export: recorded, audited."""
    from vigil.live.adjudication import read_clip

    client = request.client.host if request.client else "unknown"
    data = read_clip(request.app.state.vigil, actor, alert_id, destination=f"API download by {actor.username} ({client})")
    return Response(data, media_type="video/x-msvideo",
                    headers={"Cache-Control": "no-store",
                             "Content-Disposition": f'attachment; filename="alert-{alert_id}.avi"'})


@router.get("/alerts/stream")
async def stream(request: Request, after_id: int = 0, once: bool = False,
                 actor: Actor = Depends(permission("alert.view"))):
    """Server-Sent Events: each new alert as an ``alert`` event, a heartbeat every 15 s.
    ``once`` returns what is new and closes (for scripts and tests)."""
    vigil = request.app.state.vigil
    registry = request.app.state.live
    resume = request.headers.get("last-event-id", "")
    if resume.isdigit():  # a reconnecting EventSource continues where it stopped
        after_id = max(after_id, int(resume))

    async def events():
        last = after_id
        if not last:
            existing = list_alerts(vigil, actor, limit=1)
            last = existing[0]["alert_id"] if existing else 0
        beat = 0.0
        while not await request.is_disconnected():
            new = await asyncio.to_thread(list_alerts, vigil, actor, after_id=last)
            for alert in new:
                last = max(last, alert["alert_id"])
                yield f"id: {alert['alert_id']}\nevent: alert\ndata: {json.dumps(alert)}\n\n"
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
