"""The store's rules through the real API, as each role: who sees which faces, what deleting a
collection needs, and that an enrolment says when it withdrew a watchlist's authorisation."""

from __future__ import annotations

import pytest

from tests.api.conftest import ROLES, auth, unique
from tests.conftest import demo_bytes


def _enrol(world, kind, name, photo, data):
    return world["client"].post(f"/api/{kind}/{name}/enrol", files={"image": (photo, demo_bytes(photo), "image/jpeg")},
                                data=data, headers=auth(world, "admin"))


@pytest.mark.parametrize("role", ROLES)
def test_custody_faces_are_not_for_operators(world, role):
    """Operators adjudicate alerts against deployed watchlists: they see those faces, not the
    custody gallery's (its member list and each member's image)."""
    client = world["client"]
    gallery_image = client.get(f"/api/subjects/{world['gallery_subject_id']}/image", headers=auth(world, role))
    gallery_members = client.get("/api/galleries/custody/subjects", headers=auth(world, role))
    watchlist_image = client.get(f"/api/subjects/{world['subject_id']}/image", headers=auth(world, role))
    watchlist_members = client.get("/api/watchlists/wanted/subjects", headers=auth(world, role))
    sees_custody = role in ("admin", "supervisor", "investigator")
    sees_watchlist = role != "auditor"
    assert (gallery_image.status_code, gallery_members.status_code) == ((200, 200) if sees_custody else (403, 403))
    assert (watchlist_image.status_code, watchlist_members.status_code) == \
        ((200, 200) if sees_watchlist else (403, 403))
    if role == "operator":
        assert "watchlists used by deployments" in gallery_image.json()["detail"]


def test_an_undeployed_watchlists_faces_are_not_for_operators(world):
    name = unique("w")
    client = world["client"]
    assert client.post("/api/watchlists", json={"name": name, "purpose": "p"}, headers=auth(world, "admin")).status_code == 201
    subject = _enrol(world, "watchlists", name, "biden.jpg", {"subject_name": "Joe Biden"}).json()["subject_id"]
    assert client.get(f"/api/watchlists/{name}/subjects", headers=auth(world, "operator")).status_code == 403
    assert client.get(f"/api/subjects/{subject}/image", headers=auth(world, "operator")).status_code == 403


def test_investigators_cannot_erase_subjects_by_deleting_their_watchlist(world):
    client = world["client"]
    name = unique("w")
    client.post("/api/watchlists", json={"name": name, "purpose": "p"}, headers=auth(world, "admin"))
    subject = _enrol(world, "watchlists", name, "biden.jpg", {"subject_name": "Joe Biden"}).json()["subject_id"]
    client.post(f"/api/watchlists/{name}/authorise", json={}, headers=auth(world, "admin"))
    r = client.request("DELETE", f"/api/watchlists/{name}", json={"reason": "done"}, headers=auth(world, "investigator"))
    assert r.status_code == 403 and "subject delete" in r.json()["detail"]
    assert client.get(f"/api/subjects/{subject}", headers=auth(world, "admin")).status_code == 200  # not erased
    assert client.get(f"/api/watchlists/{name}", headers=auth(world, "admin")).json()["subjects"] == 1
    # an empty watchlist erases nobody: watchlist.manage is enough
    empty = unique("w")
    client.post("/api/watchlists", json={"name": empty, "purpose": "p"}, headers=auth(world, "admin"))
    r = client.request("DELETE", f"/api/watchlists/{empty}", json={"reason": "done"},
                       headers=auth(world, "investigator"))
    assert r.status_code == 200 and r.json()["subjects_erased"] == 0
    # a supervisor may erase: the watchlist and its only-here subject go
    r = client.request("DELETE", f"/api/watchlists/{name}", json={"reason": "done"}, headers=auth(world, "supervisor"))
    assert r.status_code == 200 and r.json()["subjects_erased"] == 1
    assert client.get(f"/api/subjects/{subject}", headers=auth(world, "admin")).status_code == 404


def test_enrolling_into_an_authorised_watchlist_says_its_authorisation_was_withdrawn(world):
    client = world["client"]
    name = unique("w")
    client.post("/api/watchlists", json={"name": name, "purpose": "p"}, headers=auth(world, "admin"))
    _enrol(world, "watchlists", name, "biden.jpg", {"subject_name": "Joe Biden"})
    client.post(f"/api/watchlists/{name}/authorise", json={}, headers=auth(world, "supervisor"))
    r = _enrol(world, "watchlists", name, "obama.jpg", {"subject_name": "Barack Obama"})
    assert r.status_code == 201, r.text
    withdrawn = r.json()["authorisation_withdrawn"]
    assert [w["watchlist"] for w in withdrawn] == [name] and "face image was added" in withdrawn[0]["because"]
    assert client.get(f"/api/watchlists/{name}", headers=auth(world, "admin")).json()["authorised_by"] is None


def test_a_plan_is_placed_on_the_cluster_through_the_api(world):
    """Issue #14: a deployment names where its cameras run, when planned or before it starts."""
    client, admin = world["client"], auth(world, "admin")
    body = {"name": unique("fleet"), "location": "Harbour", "cameras": [{"camera": "c1"}], "watchlists": ["wanted"],
            "legal_basis": "common law", "placement": "site:harbour"}
    r = client.post("/api/deployments", json=body, headers=admin)
    assert r.status_code == 201, r.text
    dep = r.json()
    assert dep["placement"] == "site:harbour"
    r = client.post(f"/api/deployments/{dep['id']}/place", json={"placement": "any"}, headers=admin)
    assert r.status_code == 200 and r.json()["placement"] == "any"
    assert client.get(f"/api/deployments/{dep['id']}", headers=admin).json()["placement"] == "any"  # read back
    r = client.post(f"/api/deployments/{dep['id']}/place", json={"placement": "the moon"}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "placement"
    r = client.post(f"/api/deployments/{dep['id']}/place", json={"placement": "local"}, headers=admin)
    assert r.status_code == 200 and r.json()["placement"] == "local"
