"""``vigil demo``: the whole product on embedded defaults, from images shipped in the package.

1. the engine: verify and identify the shipped portraits;
2. retrospective search: a small custody gallery, a probe with two faces, a case reference;
3. live: a watchlist (authorised), a crowd video made from *other* photos of the same
   people, an authorised deployment run on it: an alert for the watchlisted person, the
   other faces discarded, the deployment record;
4. the console, with a demo login whose password is generated for this data directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from vigil.config import Settings
from vigil.engine.face_engine import FaceEngine
from vigil.engine.images import decode_image

DEMO_USER = "demo"


def demo_bytes(name: str) -> bytes:
    return (resources.files("vigil") / "demo_data" / name).read_bytes()


def demo_image(name: str):
    return decode_image(demo_bytes(name), name=name)


def run_engine_demo(settings: Settings) -> dict:
    engine = FaceEngine.from_settings(settings)
    threshold = engine.pack.calibration.threshold_for(1e-4)
    enrolled = {"Barack Obama": engine.enrolment_face(demo_image("obama.jpg")),
                "Joe Biden": engine.enrolment_face(demo_image("biden.jpg"))}
    verifications = []
    for a, b in (("obama.jpg", "obama_speech.jpg"), ("obama.jpg", "biden.jpg"), ("obama.jpg", "obama_small.jpg")):
        v = engine.verify(demo_image(a), demo_image(b), target_fmr=1e-4)
        verifications.append({"a": a, "b": b, "score": v.score, "match": v.match, "threshold": v.threshold})
    identifications = []
    for image_name in ("obama_and_biden.jpg", "obama_standing.jpg"):
        for face in engine.analyse(demo_image(image_name)):
            scores = {name: float(face.vector @ ref.vector) for name, ref in enrolled.items()}
            best = max(scores, key=scores.get)
            identifications.append({"image": image_name, "box": face.face.box_list(), "best": best,
                                    "score": scores[best], "match": scores[best] >= threshold})
    return {"model_id": engine.model_id, "verifications": verifications, "identifications": identifications}


def _demo_login(vigil) -> dict:
    from sqlalchemy import select

    from vigil.governance.users import create_user
    from vigil.store.schema import User

    with vigil.store.session() as session:
        if session.scalar(select(User).where(User.username == DEMO_USER)):
            return {"username": DEMO_USER, "password": None,
                    "note": "password was printed when this data directory's demo was first run; "
                            "reset it with: vigil user reset-password demo"}
        user, password = create_user(session, DEMO_USER, "admin", created_by="vigil-demo",
                                     display_name="Demo administrator")
        vigil.store.audit.record(session, "vigil-demo", "user.created", "user", user.username, {"role": "admin"})
    return {"username": DEMO_USER, "password": password, "note": "generated for this data directory; shown once"}


def _collection(vigil, actor, kind: str, name: str, **kw):
    from vigil.errors import NotFoundError
    from vigil.store.collections import create_collection, get_collection

    engine = vigil.engine()
    with vigil.store.session() as session:
        try:
            return get_collection(session, kind, name)
        except NotFoundError:
            return create_collection(session, vigil.store.audit, actor, kind, name, pack=engine.pack.name,
                                     model_id=engine.model_id, **kw)


def run_retro_demo(vigil, actor) -> dict:
    from vigil.retro.enrolment import Enroller, EnrolItem
    from vigil.retro.search import SearchRequest, run_search

    gallery = _collection(vigil, actor, "gallery", "Demo custody images", purpose="demo")
    enroller = Enroller(vigil.store, vigil.engine(), vigil.indexes, actor, gallery)
    for name, person in (("obama.jpg", "Barack Obama"), ("biden.jpg", "Joe Biden")):
        enroller.enrol_bytes(demo_bytes(name), EnrolItem(name, person))
    result = run_search(vigil, actor, SearchRequest(gallery, "DEMO-001", "demonstration of retrospective search", 2,
                                                    "obama_and_biden.jpg"), data=demo_bytes("obama_and_biden.jpg"))
    result.pop("_probe_faces")
    return {"search_id": result["search_id"], "faces": [
        {"box": f["box"], "top": f["candidates"][0]["name"], "score": f["candidates"][0]["score"],
         "fmr": f["candidates"][0]["fmr"]} for f in result["faces"]]}


def run_live_demo(vigil, actor, *, show_progress: bool) -> dict:
    from vigil.live.deployments import authorise_deployment, create_deployment, start_deployment
    from vigil.live.runner import LiveRunner, RunOptions
    from vigil.retro.enrolment import Enroller, EnrolItem
    from vigil.store.collections import authorise_watchlist, get_collection

    watchlist = _collection(vigil, actor, "watchlist", "Demo watchlist", purpose="demonstration",
                            legal_basis="demonstration only", category="wanted")
    Enroller(vigil.store, vigil.engine(), vigil.indexes, actor, watchlist).enrol_bytes(
        demo_bytes("obama.jpg"), EnrolItem("obama.jpg", "Barack Obama", "wanted", "DEMO-W1"))
    with vigil.store.session() as session:
        coll = get_collection(session, "watchlist", "Demo watchlist")
        if not coll.authorised_by:
            authorise_watchlist(session, vigil.store.audit, actor, coll, "demo")
    from vigil.live.synth import CrowdOptions, generate_crowd

    video = vigil.store.home / "demo" / "crowd.mp4"
    crowd = generate_crowd(CrowdOptions(out=video, width=960, height=540, fps=15, seconds=8, min_face=30,
                                        max_face=110, density=2, occlusion=0.0, seed=7), engine=vigil.engine())
    video = Path(crowd["video"])
    dep = create_deployment(vigil, actor, name="Demo deployment", location="Demo street (synthetic crowd)",
                            sources=[{"camera": "camera-1", "source": str(video)}], watchlists=["Demo watchlist"],
                            window_start=None, window_end=None, legal_basis="demonstration only",
                            purpose="show live recognition on a synthetic crowd")
    authorise_deployment(vigil, actor, dep["id"], "demo")
    start_deployment(vigil, actor, dep["id"])
    sinks = [] if not show_progress else [_PrintSink()]
    result = LiveRunner(vigil, actor, dep["id"], sinks, RunOptions(fast=True)).run()
    return {"deployment_id": dep["id"], "video": str(video), "people_in_video": crowd["walkers"],
            "alerts": [{"name": a["name"], "score": a["score"], "camera": a["camera"], "time": a["time"]}
                       for a in result.alerts],
            "faces_seen": result.summary["faces_seen"], "frames": result.summary["frames"]}


class _PrintSink:
    def send(self, payload: dict) -> None:
        from vigil.cli.common import console

        if payload.get("type") == "alert":
            console.print(f"  [bold red]ALERT[/] {payload['name']} on {payload['camera']} at {payload['time']:.1f}s, "
                          f"score {payload['score']:.3f}: awaiting an operator's decision")

    def close(self) -> None:
        pass


def run_demo(settings: Settings, *, show_progress: bool = True) -> dict:
    from vigil.services import get_vigil

    vigil = get_vigil(settings)
    actor = vigil.cli_actor()
    return {"home": str(vigil.store.home), "engine": run_engine_demo(settings),
            "retrospective": run_retro_demo(vigil, actor),
            "live": run_live_demo(vigil, actor, show_progress=show_progress),
            "login": _demo_login(vigil)}
