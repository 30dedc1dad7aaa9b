"""Registered cameras: the administrator's allow-list of sources deployments may read. Thin:
each route calls one service function (permission, transaction, audit)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from vigil.api.auth import current_actor
from vigil.api.responses import Camera, Page
from vigil.api.schemas import Cursor, Limit
from vigil.services import Actor
from vigil.services.cameras import list_cameras, register_camera, remove_camera

router = APIRouter(prefix="/api", tags=["live"])


class CameraRegistrationIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    source: str = Field(min_length=1, max_length=1000)
    description: str = Field("", max_length=2000)


@router.get("/cameras", response_model=Page[Camera])
def cameras(request: Request, limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
    return list_cameras(request.app.state.vigil, actor, cursor=cursor, limit=limit).as_dict()


@router.post("/cameras", status_code=201, response_model=Camera)
def add_camera(body: CameraRegistrationIn, request: Request, actor: Actor = Depends(current_actor)):
    return register_camera(request.app.state.vigil, actor, body.name, body.source, body.description)


@router.delete("/cameras/{name}", response_model=Camera)
def delete_camera(name: str, request: Request, actor: Actor = Depends(current_actor)):
    return remove_camera(request.app.state.vigil, actor, name)
