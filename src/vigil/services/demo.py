"""``vigil demo``: the whole product on embedded defaults, from images shipped in the package.

1. the engine: verify and identify the shipped portraits;
2. retrospective search: a small custody gallery, a probe with two faces, a case reference;
3. live: a watchlist (authorised), a crowd video made from *other* photos of the same
   people, an authorised deployment run on it: an alert for the watchlisted person, the
   other faces discarded, the deployment record;
4. the console, with a demo login whose password is generated for this data directory.

It lives in the service layer because it composes use cases: every step goes through the
same service function the CLI and the API call, so each permission check and audit entry
is the real one. Running it twice in one data directory reuses what the first run made.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from vigil.engine.images import decode_image
from vigil.errors import NotFoundError
from vigil.governance.permissions import Actor
from vigil.live.runner import RunOptions
from vigil.retro.manifests import EnrolItem
from vigil.services import accounts, cameras, collections, deployments, enrolment, live_runs, search
from vigil.services.context import Vigil
from vigil.services.pages import MAX_LIMIT, every_item
from vigil.synth import CrowdOptions, generate_crowd

DEMO_USER = "demo"
GALLERY = "Demo custody images"
WATCHLIST = "Demo watchlist"
DEMO_CAMERA = "demo-camera"


def demo_bytes(name: str) -> bytes:
    return (resources.files("vigil") / "demo_data" / name).read_bytes()


def demo_image(name: str):
    return decode_image(demo_bytes(name), name=name)


def run_engine_demo(vigil: Vigil) -> dict:
    """Verification and identification with the engine alone: nothing stored, nothing audited."""
    engine = vigil.engine()
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


def _collection(vigil: Vigil, actor: Actor, kind: str, name: str, **kw) -> dict:
    try:
        return collections.show_collection(vigil, actor, kind, name)
    except NotFoundError:
        return collections.create_collection(vigil, actor, kind, name, **kw)


def run_retro_demo(vigil: Vigil, actor: Actor) -> dict:
    _collection(vigil, actor, "gallery", GALLERY, purpose="demo")
    for name, person in (("obama.jpg", "Barack Obama"), ("biden.jpg", "Joe Biden")):
        enrolment.enrol_image(vigil, actor, "gallery", GALLERY, demo_bytes(name), EnrolItem(name, person))
    result = search.run_search(vigil, actor, "gallery", GALLERY, case_ref="DEMO-001",
                               reason="demonstration of retrospective search", top=2,
                               data=demo_bytes("obama_and_biden.jpg"), probe_name="obama_and_biden.jpg")
    return {"search_id": result["id"], "faces": [
        {"box": f["box"], "top": f["candidates"][0]["name"], "score": f["candidates"][0]["score"],
         "fmr": f["candidates"][0]["fmr"]} for f in result["faces"]]}


def _demo_camera(vigil: Vigil, actor: Actor, video: Path) -> None:
    """The demo's registered camera: its crowd video (registered again if the media root moved)."""
    registered = {c["name"]: c for c in every_item(
        lambda cursor: cameras.list_cameras(vigil, actor, cursor=cursor, limit=MAX_LIMIT))}
    if DEMO_CAMERA in registered and registered[DEMO_CAMERA]["source"] != str(video.resolve()):
        cameras.remove_camera(vigil, actor, DEMO_CAMERA)
        registered.pop(DEMO_CAMERA)
    if DEMO_CAMERA not in registered:
        cameras.register_camera(vigil, actor, DEMO_CAMERA, str(video), "the demo's synthetic crowd video")


def run_live_demo(vigil: Vigil, actor: Actor, *, alert_sinks: list | None = None) -> dict:
    """``alert_sinks`` receive each alert as it happens (the CLI prints them)."""
    watchlist = _collection(vigil, actor, "watchlist", WATCHLIST, purpose="demonstration",
                            legal_basis="demonstration only", category="wanted")
    enrolment.enrol_image(vigil, actor, "watchlist", WATCHLIST, demo_bytes("obama.jpg"),
                          EnrolItem("obama.jpg", "Barack Obama", "wanted", "DEMO-W1"))
    if not watchlist.get("authorised_by"):
        collections.authorise_watchlist(vigil, actor, WATCHLIST, "demo")
    # The crowd video holds faces and its ground truth names people: both live in the private
    # media folder (0600 files, 0700 folders) for the run only and are deleted after it.
    crowd = generate_crowd(CrowdOptions(out=cameras.media_root(vigil.settings) / "vigil-demo" / "crowd.mp4",
                                        width=960, height=540, fps=15, seconds=8, min_face=30, max_face=110,
                                        density=2, occlusion=0.0, seed=7),
                           engine=vigil.engine())
    video = Path(crowd["video"])
    try:
        _demo_camera(vigil, actor, video)
        dep = deployments.create_deployment(
            vigil, actor, name="Demo deployment", location="Demo street (synthetic crowd)",
            sources=[{"camera": DEMO_CAMERA}], watchlists=[WATCHLIST],
            window_start=None, window_end=None, legal_basis="demonstration only",
            purpose="show live recognition on a synthetic crowd")
        deployments.authorise_deployment(vigil, actor, dep["id"], "demo")
        live_runs.start_deployment(vigil, actor, dep["id"])
        result = live_runs.run_deployment(vigil, actor, dep["id"], list(alert_sinks or []), RunOptions(fast=True))
    finally:
        for made in (video, Path(crowd["truth"])):
            made.unlink(missing_ok=True)
    return {"deployment_id": dep["id"], "video": str(video), "people_in_video": crowd["walkers"],
            "alerts": [{"name": a["name"], "score": a["score"], "camera": a["camera"], "time": a["time"]}
                       for a in result.alerts],
            "faces_seen": result.summary["faces_seen"], "frames": result.summary["frames"]}


def demo_login(vigil: Vigil, actor: Actor) -> dict:
    """A console login for the demo, created once per data directory (its password shown once)."""
    if any(u["username"] == DEMO_USER for u in every_item(
            lambda cursor: accounts.list_users(vigil, actor, cursor=cursor, limit=MAX_LIMIT))):
        return {"username": DEMO_USER, "password": None,
                "note": "password was printed when this data directory's demo was first run; "
                        "reset it with: vigil user reset-password demo"}
    created = accounts.add_user(vigil, actor, DEMO_USER, "admin", display_name="Demo administrator")
    return {"username": DEMO_USER, "password": created["password"], "note": "generated for this data directory; shown once"}


def run_demo(vigil: Vigil, actor: Actor, *, alert_sinks: list | None = None) -> dict:
    return {"home": str(vigil.store.home), "engine": run_engine_demo(vigil),
            "retrospective": run_retro_demo(vigil, actor),
            "live": run_live_demo(vigil, actor, alert_sinks=alert_sinks),
            "login": demo_login(vigil, actor)}
