"""After a deployment and a retention run: the record shows the figures and the database
holds nothing that policy says must be gone."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import func, select, update

from tests.live.conftest import two_people_video, watchlist  # noqa: F401 (fixture)
from vigil.services.reports import annual_report, deployment_report, render
from vigil.services.retention import run_retention
from vigil.services.alerts import decide
from tests.security.cameras_helper import register_sources
from vigil.services.deployments import authorise_deployment, create_deployment
from vigil.services.live_runs import DeploymentRunner, RunOptions, start_deployment
from vigil.store.schema import Alert, AuditEntry, Blob, SearchRecord, SnapshotEntry
from vigil.timeutil import utcnow


def _deploy(vigil, admin, video, name="Leicester Square"):
    register_sources(vigil, [{"camera": "c", "source": str(video)}])
    dep = create_deployment(vigil, admin, name=name, location="WC2", sources=[{"camera": "c", "source": str(video)}],
                            watchlists=["wanted"], window_start=None, window_end=None, legal_basis="test")
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    return dep["id"], DeploymentRunner(vigil, admin, dep["id"], [], RunOptions(fast=True)).run()


def test_retention_purges_by_policy_and_reports_still_add_up(vigil, admin, watchlist, tmp_path):  # noqa: F811
    video = two_people_video(tmp_path / "v.mp4")
    dep1, run1 = _deploy(vigil, admin, video)
    dep2, run2 = _deploy(vigil, admin, video, "Oxford Street")
    decide(vigil, admin, run1.alerts[0]["id"], decision="false_alert", outcome="no_action")
    decide(vigil, admin, run2.alerts[0]["id"], decision="confirmed", outcome="arrested", case_ref="CASE-9")
    with vigil.store.session() as s:  # both alerts are old now
        s.execute(update(Alert).values(created_at=utcnow() - timedelta(days=40)))
    counts = run_retention(vigil, admin)
    assert counts["alerts_false_alert"] == 1 and counts["alerts_confirmed"] == 0  # the case keeps the confirmed one
    with vigil.store.session() as s:
        false_alert = s.get(Alert, run1.alerts[0]["id"])
        kept = s.get(Alert, run2.alerts[0]["id"])
        assert false_alert.probe_blob_id is None and false_alert.frame_blob_id is None
        assert false_alert.subject_name == "" and false_alert.biometrics_deleted_at is not None
        assert kept.probe_blob_id is not None
        assert s.scalar(select(func.count()).select_from(SnapshotEntry)) == 0
        kinds = sorted(s.scalars(select(Blob.kind)))
        assert kinds.count("alert_probe") == 1 and kinds.count("face_image") == 1
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "retention.run")) == 1
    record = deployment_report(vigil, admin, dep1)
    assert record["alerts"] == 1 and record["false_alerts"] == 1 and record["faces_seen"] >= 2
    assert record["false_alert_rate"] == 1 / record["faces_seen"]
    year = utcnow().year
    annual = annual_report(vigil, admin, year)
    assert annual["totals"]["deployments"] == 2 and annual["totals"]["arrests"] == 1
    rows = list(csv.DictReader(io.StringIO(render(annual, "csv", "t"))))
    assert [r["deployment_id"] for r in rows] == [str(dep1), str(dep2)]
    html = render(annual, "html", f"Deployments {year}")
    assert "<img alt=" in html and "Oxford Street" in html


def test_old_search_probes_are_purged(vigil, admin):
    from tests.conftest import demo_bytes
    from tests.store.test_enrol_search import make_gallery
    from vigil.services.search import run_search

    make_gallery(vigil, admin)
    run_search(vigil, admin, "gallery", "custody", case_ref="C", reason="r", top=1, data=demo_bytes("obama.jpg"))
    with vigil.store.session() as s:
        s.execute(update(SearchRecord).values(created_at=utcnow() - timedelta(days=60)))
    assert run_retention(vigil, admin)["search_probes"] == 1
    with vigil.store.session() as s:
        assert s.scalar(select(SearchRecord.probe_blob_id)) is None
        assert s.scalar(select(func.count()).select_from(Blob).where(Blob.kind == "search_probe")) == 0
