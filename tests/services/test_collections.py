"""Collections, subjects and enrolment as use cases: the watchlist authorisation rule through
every route that can change a watchlist's content, the view permissions the services now
check themselves, and what deleting a collection needs. Results are read back outside the
transaction under test (a fresh session, or the real CLI)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import demo_bytes
from tests.store.conftest import admin, vigil  # noqa: F401 (shared fixtures)
from vigil.errors import PermissionDenied
from vigil.services import Actor, forget_contexts, get_vigil
from vigil.services.accounts import add_user, create_token
from vigil.services.collections import (
    authorise_watchlist, collection_members, create_collection, delete_collection, list_collections, show_collection,
)
from vigil.services.enrolment import EnrolItem, enrol_image
from vigil.services.subjects import add_subject_to_collection, erase_subject, remove_subject_from_collection, \
    show_subject
from vigil.store.schema import AuditEntry, Collection

INVESTIGATOR = Actor("ivan", "investigator")




@pytest.fixture()
def listed(vigil, admin) -> str:
    """A subject on the authorised watchlist 'wanted'; a gallery 'custody' of the same pack."""
    create_collection(vigil, admin, "watchlist", "wanted", purpose="test")
    create_collection(vigil, admin, "gallery", "custody")
    subject = enrol_image(vigil, admin, "watchlist", "wanted", demo_bytes("obama.jpg"),
                          EnrolItem("a", "Barack Obama"))["subject_id"]
    authorise_watchlist(vigil, admin, "wanted")
    return subject


def _authorised_by(settings, name: str) -> str | None:
    forget_contexts()
    fresh = get_vigil(settings)
    with fresh.store.session() as s:
        return s.scalar(select(Collection.authorised_by).where(Collection.kind == "watchlist",
                                                               Collection.name == name))


def _withdrawals(settings) -> list[dict]:
    forget_contexts()
    with get_vigil(settings).store.session() as s:
        return [json.loads(e.details) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.action == "watchlist.authorisation_withdrawn"))]


def test_enrolling_through_a_gallery_a_face_of_a_listed_subject_withdraws_the_watchlist(
        vigil, admin, listed, settings, tmp_path):
    """Issue: ``vigil enroll photo.jpg --gallery g --subject <listed id>`` indexed the new face
    into the watchlist too, but only the gallery was marked changed: the next deployment
    alerted on a different person under the listed name."""
    from vigil.cli import app as cli

    add_user(vigil, admin, "ivan", "investigator", password="investigator-pw-123")
    token = create_token(vigil, admin, for_user="ivan", name="cli")["token"]
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(demo_bytes("biden.jpg"))  # another person's face, under the listed subject
    forget_contexts()
    result = CliRunner().invoke(cli, ["enroll", str(photo), "--gallery", "custody", "--subject", listed, "--json"],
                                env={"VIGIL_TOKEN": token})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["enrolled"] == 1
    assert [w["watchlist"] for w in report["authorisation_withdrawn"]] == ["wanted"]
    assert _authorised_by(settings, "wanted") is None
    audited = _withdrawals(settings)
    assert len(audited) == 1 and "through gallery 'custody'" in audited[0]["because"]


def test_the_cli_says_when_an_enrolment_withdrew_an_authorisation(vigil, admin, listed, tmp_path):
    from vigil.cli import app as cli

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(demo_bytes("biden.jpg"))
    forget_contexts()
    result = CliRunner().invoke(cli, ["enroll", str(photo), "--watchlist", "wanted", "--name", "Joe Biden"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "authorisation withdrawn from watchlist 'wanted'" in result.stdout
    assert "must authorise it again" in result.stdout


def test_a_gallery_enrolment_of_an_unlisted_subject_leaves_watchlists_alone(vigil, admin, listed, settings):
    out = enrol_image(vigil, admin, "gallery", "custody", demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    assert out["status"] == "enrolled" and out["authorisation_withdrawn"] == []
    assert _authorised_by(settings, "wanted") == admin.username


def test_erasing_a_listed_subject_withdraws_the_watchlist(vigil, admin, listed, settings):
    out = erase_subject(vigil, admin, listed, "erasure request")
    assert out["authorisation_withdrawn"] == [{"watchlist": "wanted", "because": f"subject {listed} erased"}]
    assert _authorised_by(settings, "wanted") is None


def test_membership_changes_withdraw_the_watchlist(vigil, admin, listed, settings):
    other = enrol_image(vigil, admin, "gallery", "custody", demo_bytes("biden.jpg"),
                        EnrolItem("b", "Joe Biden"))["subject_id"]
    added = add_subject_to_collection(vigil, admin, "watchlist", "wanted", other)
    assert added["added"] and [w["watchlist"] for w in added["authorisation_withdrawn"]] == ["wanted"]
    assert _authorised_by(settings, "wanted") is None
    authorise_watchlist(vigil, admin, "wanted")
    removed = remove_subject_from_collection(vigil, admin, "watchlist", "wanted", other)
    assert removed["removed"] and [w["watchlist"] for w in removed["authorisation_withdrawn"]] == ["wanted"]
    assert _authorised_by(settings, "wanted") is None


def test_view_permissions_are_checked_by_the_services(vigil, admin, listed):
    auditor = Actor("ann", "auditor")
    for call in (lambda: list_collections(vigil, auditor, "watchlist"),
                 lambda: show_collection(vigil, auditor, "watchlist", "wanted"),
                 lambda: collection_members(vigil, auditor, "watchlist", "wanted"),
                 lambda: show_subject(vigil, auditor, listed),
                 lambda: show_subject(vigil, Actor("olive", "operator"), listed)):
        with pytest.raises(PermissionDenied):
            call()
    assert show_subject(vigil, INVESTIGATOR, listed)["id"] == listed


def test_operators_see_no_custody_members(vigil, admin, listed):
    enrol_image(vigil, admin, "gallery", "custody", demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    operator = Actor("olive", "operator")
    with pytest.raises(PermissionDenied, match="not galleries"):
        collection_members(vigil, operator, "gallery", "custody")
    assert [m["name"] for m in collection_members(vigil, INVESTIGATOR, "gallery", "custody").items] == ["Joe Biden"]


def test_deleting_a_collection_that_would_erase_subjects_needs_the_erasure_permission(vigil, admin, listed,
                                                                                       settings):
    with pytest.raises(PermissionDenied, match="subject delete"):
        delete_collection(vigil, INVESTIGATOR, "watchlist", "wanted", "no longer needed")
    assert show_subject(vigil, admin, listed)["id"] == listed  # nothing erased, nothing deleted
    out = delete_collection(vigil, Actor("sam", "supervisor"), "watchlist", "wanted", "no longer needed")
    assert out["subjects_erased"] == 1
    forget_contexts()
    with get_vigil(settings).store.session() as s:
        assert s.scalar(select(Collection).where(Collection.name == "wanted")) is None
