"""Watchlist entries that average several reference photos (issue #13): the snapshot, the
thresholds from the tables of k-photo entries, and the fallback to one entry per photo."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import demo_bytes
from tests.live.conftest import enrol_biden
from tests.live.test_deployments import make, run
from vigil.engine.calibration import load_calibration, mean_template
from vigil.services.deployments import authorise_deployment, get_deployment_record
from vigil.services.live_runs import start_deployment
from vigil.store.deployments import get_deployment
from vigil.store.schema import TemplateRow
from vigil.store.snapshots import load_entries
from vigil.store.store import template_context

OBAMA_PHOTOS = ("obama.jpg", "obama_standing.jpg", "obama_small.jpg", "obama_speech.jpg")


def three_photo_watchlist(vigil, admin, photos=OBAMA_PHOTOS[:3]):
    """The authorised watchlist "wanted": Barack Obama from several photos, Joe Biden from one."""
    from vigil.retro.manifests import EnrolItem
    from vigil.services.collections import authorise_watchlist, create_collection
    from vigil.services.enrolment import enrol_image

    create_collection(vigil, admin, "watchlist", "wanted", pack="sface", purpose="test", category="wanted")
    subject = None
    for photo in photos:
        out = enrol_image(vigil, admin, "watchlist", "wanted", demo_bytes(photo),
                          EnrolItem(photo, "Barack Obama", subject_id=subject), quality_gate=False)
        assert out["status"] == "enrolled", out
        subject = out["subject_id"]
    enrol_biden(vigil, admin)
    authorise_watchlist(vigil, admin, "wanted")
    return subject


def frozen(vigil, dep_id):
    with vigil.store.session() as s:
        return load_entries(vigil.store, s, get_deployment(s, dep_id).snapshot_ids)


def templates_of(vigil, subject_id):
    with vigil.store.session() as s:
        rows = s.query(TemplateRow).filter(TemplateRow.subject_id == subject_id) \
            .order_by(TemplateRow.quality_score.desc(), TemplateRow.id).all()
        return [vigil.store.open_vector(r.vector_enc, template_context(r.image_id, r.model_id)) for r in rows]


def test_a_subject_enrolled_from_three_photos_is_one_mean_entry_with_its_own_threshold(
        vigil, admin, video):
    obama = three_photo_watchlist(vigil, admin)
    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    entries, vectors = frozen(vigil, dep["id"])
    by_name = {e.name: (e, v) for e, v in zip(entries, vectors)}
    assert sorted(by_name) == ["Barack Obama", "Joe Biden"]  # one entry per subject, not per photo
    entry, vector = by_name["Barack Obama"]
    assert entry.references == 3 and by_name["Joe Biden"][0].references == 1
    expected = mean_template(np.stack(templates_of(vigil, obama)))
    assert np.allclose(vector, expected, atol=1e-6) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)

    result = run(vigil, admin, dep["id"])  # the clip shows both, Obama in a photo not enrolled
    assert {a["name"] for a in result.alerts} == {"Barack Obama", "Joe Biden"}
    record = get_deployment_record(vigil, admin, dep["id"])
    # 2 entries at 1 in 10,000: per-comparison FMR 5e-5; the 3-photo table is stricter there
    single = load_calibration("sface-2021dec-fp32-flip").threshold_for(5e-5)
    three = load_calibration("sface-2021dec-fp32-flip", references=3).threshold_for(5e-5)
    assert three > single
    assert record["threshold_by_references"] == {"1": round(single, 5), "3": round(three, 5)}
    assert record["threshold"] == pytest.approx(single)


def test_at_most_three_photos_are_averaged_best_quality_first(vigil, admin, video):
    obama = three_photo_watchlist(vigil, admin, OBAMA_PHOTOS)
    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    entries, vectors = frozen(vigil, dep["id"])
    (i,) = [k for k, e in enumerate(entries) if e.name == "Barack Obama"]
    best_three = templates_of(vigil, obama)[:3]
    assert entries[i].references == 3 and np.allclose(vectors[i], mean_template(np.stack(best_three)), atol=1e-6)


def test_with_one_reference_configured_each_photo_is_its_own_entry(vigil, admin, video, monkeypatch):
    monkeypatch.setattr(vigil.settings.live, "references", 1)
    three_photo_watchlist(vigil, admin)
    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    entries, vectors = frozen(vigil, dep["id"])
    assert [e.name for e in entries].count("Barack Obama") == 3 and {e.references for e in entries} == {1}
    assert get_deployment_record(vigil, admin, dep["id"])["watchlist_size"] == 2  # people, not photos
