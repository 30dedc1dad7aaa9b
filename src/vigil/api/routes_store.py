"""Galleries, watchlists, subjects, enrolment, retrospective search."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from vigil.api.auth import permission
from vigil.api.schemas import AuthoriseIn, CollectionIn, DeleteIn, MemberIn
from vigil.errors import NotFoundError, VigilError
from vigil.governance.permissions import Actor, require
from vigil.retro.enrolment import Enroller, EnrolItem
from vigil.retro.membership import add_subject_to_collection, remove_subject_from_collection
from vigil.retro.search import SearchRequest, run_search
from vigil.store.collections import (
    authorise_watchlist, create_collection, delete_collection, describe, expire_collection, get_collection,
    list_collections,
)
from vigil.store.subjects import describe_subject, erase_subject, get_subject

router = APIRouter(prefix="/api", tags=["store"])
KINDS = {"galleries": "gallery", "watchlists": "watchlist"}


def _manage(kind: str) -> str:
    return "gallery.manage" if kind == "gallery" else "watchlist.manage"


@router.post("/watchlists/{name}/authorise")
def authorise(name: str, body: AuthoriseIn, request: Request,
              actor: Actor = Depends(permission("watchlist.authorise"))):
    vigil = request.app.state.vigil
    with vigil.store.session() as session:
        coll = authorise_watchlist(session, vigil.store.audit, actor, get_collection(session, "watchlist", name),
                                   body.note)
        return describe(session, coll)


@router.post("/search")
async def search(request: Request, probe: UploadFile = File(...), gallery: str = Form(""), watchlist: str = Form(""),
                 case_ref: str = Form("", max_length=200), reason: str = Form("", max_length=2000),
                 top: int = Form(20), actor: Actor = Depends(permission("search.run"))):
    """Search every face of an uploaded probe (image or video) against a gallery."""
    from vigil.api.media import jpeg_data_url

    vigil = request.app.state.vigil
    if bool(gallery) == bool(watchlist):
        raise VigilError("give exactly one of gallery or watchlist")
    data = await probe.read()
    with vigil.store.session() as session:
        coll = get_collection(session, "gallery" if gallery else "watchlist", gallery or watchlist)
    result = run_search(vigil, actor, SearchRequest(coll, case_ref, reason, top, probe.filename or "probe"), data=data)
    faces = result.pop("_probe_faces")
    for face, pf in zip(result["faces"], faces):
        face["crop"] = jpeg_data_url(pf.crop)
    return result


@router.get("/subjects/{subject_id}")
def subject(subject_id: str, request: Request, actor: Actor = Depends(permission("subject.view"))):
    with request.app.state.vigil.store.session() as session:
        return describe_subject(session, get_subject(session, subject_id))


@router.delete("/subjects/{subject_id}")
def erase(subject_id: str, body: DeleteIn, request: Request, actor: Actor = Depends(permission("subject.delete"))):
    vigil = request.app.state.vigil
    with vigil.store.session() as session:
        return erase_subject(vigil.store, session, actor, subject_id, body.reason)


@router.get("/subjects/{subject_id}/image")
def subject_image(subject_id: str, request: Request, actor: Actor = Depends(permission("image.view"))):
    """The subject's first enrolled face, cropped (for the console's side-by-side view)."""
    from sqlalchemy import select

    from vigil.api.media import face_crop_jpeg
    from vigil.store.schema import FaceImage

    vigil = request.app.state.vigil
    with vigil.store.session() as session:
        image = session.scalar(select(FaceImage).where(FaceImage.subject_id == subject_id).order_by(FaceImage.id))
        if image is None:
            raise NotFoundError("no image")
        data = vigil.store.blobs.get(image.blob_id)
        box = image.box
    return Response(face_crop_jpeg(data, box), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def collection_router(plural: str) -> APIRouter:
    """The same routes for galleries and watchlists (kind fixed per router, no path clash)."""
    kind = KINDS[plural]
    manage = _manage(kind)
    r = APIRouter(prefix="/api", tags=[plural])

    @r.get(f"/{plural}")
    def list_(request: Request, actor: Actor = Depends(permission("collection.view"))):
        with request.app.state.vigil.store.session() as session:
            return list_collections(session, actor, kind)

    @r.post(f"/{plural}", status_code=201)
    def create(body: CollectionIn, request: Request, actor: Actor = Depends(permission(manage))):
        vigil = request.app.state.vigil
        engine = vigil.engine(body.pack)
        with vigil.store.session() as session:
            coll = create_collection(session, vigil.store.audit, actor, kind, body.name, pack=engine.pack.name,
                                     model_id=engine.model_id, purpose=body.purpose, legal_basis=body.legal_basis,
                                     category=body.category if kind == "watchlist" else "reference",
                                     expires_at=body.expires_at)
            return describe(session, coll)

    @r.get(f"/{plural}/{{name}}")
    def show(name: str, request: Request, actor: Actor = Depends(permission("collection.view"))):
        with request.app.state.vigil.store.session() as session:
            return describe(session, get_collection(session, kind, name))

    @r.get(f"/{plural}/{{name}}/subjects")
    def members(name: str, request: Request, actor: Actor = Depends(permission("collection.view"))):
        from sqlalchemy import select

        from vigil.store.schema import Membership, Subject

        with request.app.state.vigil.store.session() as session:
            coll = get_collection(session, kind, name)
            rows = session.scalars(select(Subject).join(Membership, Membership.subject_id == Subject.id)
                                   .where(Membership.collection_id == coll.id).order_by(Subject.display_name)).all()
            return [{"id": s.id, "name": s.display_name, "category": s.category, "reference": s.reference} for s in rows]

    @r.post(f"/{plural}/{{name}}/expire")
    def expire(name: str, request: Request, actor: Actor = Depends(permission(manage))):
        vigil = request.app.state.vigil
        with vigil.store.session() as session:
            return describe(session, expire_collection(session, vigil.store.audit, actor,
                                                       get_collection(session, kind, name)))

    @r.post(f"/{plural}/{{name}}/members")
    def add_member(name: str, body: MemberIn, request: Request, actor: Actor = Depends(permission(manage))):
        return add_subject_to_collection(request.app.state.vigil, actor, kind, name, body.subject_id)

    @r.delete(f"/{plural}/{{name}}/members/{{subject_id}}")
    def remove_member(name: str, subject_id: str, request: Request, actor: Actor = Depends(permission(manage))):
        return remove_subject_from_collection(request.app.state.vigil, actor, kind, name, subject_id)

    @r.delete(f"/{plural}/{{name}}")
    def delete(name: str, body: DeleteIn, request: Request, actor: Actor = Depends(permission(manage))):
        vigil = request.app.state.vigil
        with vigil.store.session() as session:
            coll = get_collection(session, kind, name)
            cid = coll.id
            summary = delete_collection(vigil.store, session, actor, coll, body.reason)
        vigil.indexes.drop(cid)
        return summary

    @r.post(f"/{plural}/{{name}}/enrol", status_code=201)
    async def enrol(name: str, request: Request, response: Response, image: UploadFile = File(...),
                    subject_name: str = Form("", max_length=200), subject_id: str = Form("", max_length=40),
                    category: str = Form("", max_length=40), reference: str = Form("", max_length=200),
                    preview: bool = Form(False), actor: Actor = Depends(permission(manage))):
        """Enrol one image. With ``preview`` the face and its quality are returned and nothing is stored."""
        vigil = request.app.state.vigil
        data = await image.read()
        with vigil.store.session() as session:
            coll = get_collection(session, kind, name)
        engine = vigil.engine_for(coll)
        if preview:
            from vigil.engine.images import decode_image

            pixels = decode_image(data, max_pixels=vigil.settings.max_image_pixels, name=image.filename or "upload")
            faces = engine.detect(pixels)
            found = engine.primary(pixels, name=image.filename or "upload")
            response.status_code = 200  # nothing was created
            return {"stored": False, "box": found.face.box_list(), "quality": found.quality.to_dict(),
                    "faces_in_image": len(faces),
                    "warning": (f"{len(faces)} faces in this photo: the largest, most central one is used"
                                if len(faces) > 1 else None)}
        if not (subject_name.strip() or subject_id):
            raise VigilError("subject_name (or subject_id) is required")
        enroller = Enroller(vigil.store, engine, vigil.indexes, actor, coll)
        outcome = enroller.enrol_bytes(data, EnrolItem(image.filename or "upload", subject_name.strip(),
                                                       category or None, reference, subject_id or None))
        if outcome.status == "rejected":
            from vigil.errors import QualityError

            raise QualityError("rejected: " + "; ".join(outcome.reasons), outcome.reasons)
        return outcome.to_dict()

    return r


