"""Galleries, watchlists, subjects, enrolment, retrospective search: HTTP in, service call,
JSON out. Routes only authenticate (``current_actor``); each service checks its own
permission, so a role without it gets PermissionDenied (403)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from vigil.api.auth import current_actor
from vigil.api.responses import (
    Collection, CollectionDeleted, Enrolled, EnrolPreview, Member, MemberAdded, MemberRemoved, Page, SearchResult,
    Subject, SubjectErased,
)
from vigil.api.schemas import JPEG, AuthoriseIn, CollectionIn, CollectionName, Cursor, Limit, DeleteIn, MemberIn, SubjectId
from vigil.errors import QualityError, VigilError
from vigil.services import Actor
from vigil.services import collections as collections_service
from vigil.services import enrolment, search as search_service, subjects
from vigil.services.enrolment import EnrolItem

router = APIRouter(prefix="/api", tags=["store"])
KINDS = {"galleries": "gallery", "watchlists": "watchlist"}


@router.post("/watchlists/{name}/authorise", response_model=Collection)
def authorise(name: CollectionName, body: AuthoriseIn, request: Request, actor: Actor = Depends(current_actor)):
    return collections_service.authorise_watchlist(request.app.state.vigil, actor, name, body.note)


@router.post("/search", response_model=SearchResult, response_model_exclude_unset=True)
async def search(request: Request, probe: UploadFile = File(...), gallery: str = Form("", max_length=120),
                 watchlist: str = Form("", max_length=120),
                 case_ref: str = Form("", max_length=200), reason: str = Form("", max_length=2000),
                 top: int = Form(20, ge=1, le=200), actor: Actor = Depends(current_actor)):
    """Search every face of an uploaded probe (image or video) against a gallery."""
    if bool(gallery) == bool(watchlist):
        raise VigilError("give exactly one of gallery or watchlist")
    data = await probe.read()
    kind, name = ("gallery", gallery) if gallery else ("watchlist", watchlist)
    return search_service.run_search(request.app.state.vigil, actor, kind, name, case_ref=case_ref, reason=reason,
                                     top=top, data=data, probe_name=probe.filename or "probe", crops=True)


@router.get("/subjects/{subject_id}", response_model=Subject)
def subject(subject_id: SubjectId, request: Request, actor: Actor = Depends(current_actor)):
    return subjects.show_subject(request.app.state.vigil, actor, subject_id)


@router.delete("/subjects/{subject_id}", response_model=SubjectErased, response_model_exclude_unset=True)
def erase(subject_id: SubjectId, body: DeleteIn, request: Request, actor: Actor = Depends(current_actor)):
    return subjects.erase_subject(request.app.state.vigil, actor, subject_id, body.reason)


@router.get("/subjects/{subject_id}/image", response_class=Response, responses=JPEG)
def subject_image(subject_id: SubjectId, request: Request, actor: Actor = Depends(current_actor)):
    """The subject's first enrolled face, cropped (for the console's side-by-side view)."""
    jpeg = subjects.subject_face_jpeg(request.app.state.vigil, actor, subject_id)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def collection_router(plural: str) -> APIRouter:
    """The same routes for galleries and watchlists (kind fixed per router, no path clash)."""
    kind = KINDS[plural]
    r = APIRouter(prefix="/api", tags=[plural])

    @r.get(f"/{plural}", response_model=Page[Collection])
    def list_(request: Request, limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
        return collections_service.list_collections(request.app.state.vigil, actor, kind, cursor=cursor,
                                                    limit=limit).as_dict()

    @r.post(f"/{plural}", status_code=201, response_model=Collection)
    def create(body: CollectionIn, request: Request, actor: Actor = Depends(current_actor)):
        return collections_service.create_collection(
            request.app.state.vigil, actor, kind, body.name, pack=body.pack, purpose=body.purpose,
            legal_basis=body.legal_basis, category=body.category if kind == "watchlist" else "reference",
            expires_at=body.expires_at)

    @r.get(f"/{plural}/{{name}}", response_model=Collection)
    def show(name: CollectionName, request: Request, actor: Actor = Depends(current_actor)):
        return collections_service.show_collection(request.app.state.vigil, actor, kind, name)

    @r.get(f"/{plural}/{{name}}/subjects", response_model=Page[Member])
    def members(name: CollectionName, request: Request,
                q: Annotated[str | None, Query(max_length=200, description="name or reference contains this")] = None,
                limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
        """The subjects, by name, one page at a time."""
        return collections_service.collection_members(request.app.state.vigil, actor, kind, name, q=q,
                                                      cursor=cursor, limit=limit).as_dict()

    @r.post(f"/{plural}/{{name}}/expire", response_model=Collection)
    def expire(name: CollectionName, request: Request, actor: Actor = Depends(current_actor)):
        return collections_service.expire_collection(request.app.state.vigil, actor, kind, name)

    @r.post(f"/{plural}/{{name}}/members", response_model=MemberAdded)
    def add_member(name: CollectionName, body: MemberIn, request: Request, actor: Actor = Depends(current_actor)):
        return subjects.add_subject_to_collection(request.app.state.vigil, actor, kind, name, body.subject_id)

    @r.delete(f"/{plural}/{{name}}/members/{{subject_id}}", response_model=MemberRemoved)
    def remove_member(name: CollectionName, subject_id: SubjectId, request: Request,
                      actor: Actor = Depends(current_actor)):
        return subjects.remove_subject_from_collection(request.app.state.vigil, actor, kind, name, subject_id)

    @r.delete(f"/{plural}/{{name}}", response_model=CollectionDeleted)
    def delete(name: CollectionName, body: DeleteIn, request: Request, actor: Actor = Depends(current_actor)):
        return collections_service.delete_collection(request.app.state.vigil, actor, kind, name, body.reason)

    @r.post(f"/{plural}/{{name}}/enrol", status_code=201, response_model=None, responses={
        201: {"model": Enrolled, "description": "the image enrolled (or skipped: already enrolled here)"},
        200: {"model": EnrolPreview, "description": "a preview: the face and its quality, nothing stored"}})
    async def enrol(name: CollectionName, request: Request, response: Response, image: UploadFile = File(...),
                    subject_name: str = Form("", max_length=200), subject_id: str = Form("", max_length=40),
                    category: str = Form("", max_length=40), reference: str = Form("", max_length=200),
                    preview: bool = Form(False),
                    face: int | None = Form(None, ge=1, le=1000, description="which face of a group photo "
                                            "(1 = leftmost); required when several faces are of comparable size"),
                    actor: Actor = Depends(current_actor)):
        """Enrol one image. With ``preview`` the face and its quality are returned and nothing is
        stored. ``authorisation_withdrawn`` lists the watchlists this enrolment de-authorised."""
        vigil = request.app.state.vigil
        data = await image.read()
        filename = image.filename or "upload"
        if preview:
            response.status_code = 200  # nothing was created
            return enrolment.preview_enrolment(vigil, actor, kind, name, data, filename, face)
        outcome = enrolment.enrol_image(vigil, actor, kind, name, data,
                                        EnrolItem(filename, subject_name.strip(), category or None, reference,
                                                  subject_id or None, face=face))
        if outcome["status"] == "rejected":
            raise QualityError("rejected: " + "; ".join(outcome["reasons"]), outcome["reasons"])
        return outcome

    return r
