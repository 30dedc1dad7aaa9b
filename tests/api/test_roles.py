"""Every API route against every role: allowed roles succeed, the others get 403, and
requests without credentials get 401. The permission each route needs is read from the
route itself, so a new route without an entry here fails the completeness check."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from tests.api.conftest import ROLES, auth, unique
from tests.conftest import demo_bytes
from vigil.governance.permissions import allowed

PUBLIC = {("POST", "/api/token"), ("POST", "/api/logout"), ("GET", "/api/health")}


def api_routes(app):
    def walk(routes):
        for r in routes:
            if isinstance(r, APIRoute):
                yield r
            elif hasattr(r, "original_router"):
                yield from walk(r.original_router.routes)

    for route in walk(app.router.routes):
        if not route.path.startswith("/api/"):
            continue  # console pages are covered by tests/web
        for method in route.methods - {"HEAD"}:
            yield method, route.path, route


# The permission each route needs, declared here rather than read from the code under test;
# None = any signed-in user, a tuple = all of these. A route missing from this table fails the
# completeness check.
ROUTE_PERMISSIONS = {
    # deleting a collection that holds subjects only it has erases them: the erasure permission too
    ('DELETE', '/api/galleries/{name}'): ('gallery.manage', 'subject.delete'),
    ('DELETE', '/api/galleries/{name}/members/{subject_id}'): 'gallery.manage',
    ('DELETE', '/api/subjects/{subject_id}'): 'subject.delete',
    ('DELETE', '/api/watchlists/{name}'): ('watchlist.manage', 'subject.delete'),
    ('DELETE', '/api/watchlists/{name}/members/{subject_id}'): 'watchlist.manage',
    ('GET', '/api/alerts'): 'alert.view',
    ('GET', '/api/alerts/stream'): 'alert.view',
    ('GET', '/api/alerts/{alert_id}'): 'alert.view',
    ('GET', '/api/alerts/{alert_id}/clip.avi'): 'alert.export',
    ('GET', '/api/alerts/{alert_id}/{which}.jpg'): 'alert.view',
    ('GET', '/api/audit'): 'audit.view',
    ('GET', '/api/audit/verify'): 'audit.view',
    ('GET', '/api/deployments'): 'deployment.view',
    ('GET', '/api/cameras'): 'deployment.view',
    ('POST', '/api/cameras'): 'camera.manage',
    ('DELETE', '/api/cameras/{name}'): 'camera.manage',
    ('GET', '/api/deployments/{dep_id}'): 'deployment.view',
    ('GET', '/api/deployments/{dep_id}/authorisation'): 'deployment.view',
    ('POST', '/api/deployments/{dep_id}/reject'): 'deployment.authorise',
    ('GET', '/api/galleries'): 'collection.view',
    ('GET', '/api/galleries/{name}'): 'collection.view',
    # a gallery's member list shows who is held: subject.view (operators see deployed watchlists' only)
    ('GET', '/api/galleries/{name}/subjects'): ('collection.view', 'subject.view'),
    ('GET', '/api/health'): None,
    ('GET', '/api/me'): None,
    ('GET', '/api/me/sessions'): None,
    ('GET', '/api/me/tokens'): 'token.manage_own',
    ('GET', '/api/searches'): 'search.view',  # an investigator sees their own
    ('GET', '/api/tokens'): 'audit.view',  # everyone's tokens: administrators, supervisors, auditors
    ('GET', '/api/reports/annual/{year}'): 'report.view',
    ('GET', '/api/reports/deployments/{dep_id}'): 'report.view',
    ('GET', '/api/subjects/{subject_id}'): 'subject.view',
    ('GET', '/api/subjects/{subject_id}/image'): 'image.view',
    ('GET', '/api/users'): 'user.manage',
    ('GET', '/api/watchlists'): 'collection.view',
    ('GET', '/api/watchlists/{name}'): 'collection.view',
    ('GET', '/api/watchlists/{name}/subjects'): 'collection.view',
    ('POST', '/api/alerts/{alert_id}/decision'): 'alert.decide',
    ('POST', '/api/deployments'): 'deployment.create',
    ('POST', '/api/deployments/{dep_id}/authorise'): 'deployment.authorise',
    ('POST', '/api/deployments/{dep_id}/cancel'): 'deployment.authorise',  # or its creator (admin creates here)
    ('POST', '/api/deployments/{dep_id}/place'): 'deployment.authorise',  # or its creator (admin creates here)
    ('POST', '/api/deployments/{dep_id}/outcomes'): 'deployment.record',
    ('POST', '/api/deployments/{dep_id}/start'): 'deployment.run',
    ('POST', '/api/deployments/{dep_id}/stop'): 'deployment.run',
    ('POST', '/api/galleries'): 'gallery.manage',
    ('POST', '/api/galleries/{name}/enrol'): 'gallery.manage',
    ('POST', '/api/galleries/{name}/expire'): 'gallery.manage',
    ('POST', '/api/galleries/{name}/members'): 'gallery.manage',
    ('POST', '/api/logout'): None,
    ('POST', '/api/me/tokens'): 'token.manage_own',
    ('POST', '/api/retention/run'): 'system.admin',
    ('POST', '/api/search'): 'search.run',
    ('POST', '/api/token'): None,
    ('POST', '/api/tokens/{token_id}/revoke'): 'token.manage_own',
    ('POST', '/api/users'): 'user.manage',
    ('POST', '/api/users/{username}/disable'): 'user.manage',
    ('POST', '/api/users/{username}/enable'): 'user.manage',
    ('POST', '/api/users/{username}/reset-password'): 'user.manage',
    ('POST', '/api/users/{username}/role'): 'user.manage',
    ('POST', '/api/watchlists'): 'watchlist.manage',
    ('POST', '/api/watchlists/{name}/authorise'): 'watchlist.authorise',
    ('POST', '/api/watchlists/{name}/enrol'): 'watchlist.manage',
    ('POST', '/api/watchlists/{name}/expire'): 'watchlist.manage',
    ('POST', '/api/watchlists/{name}/members'): 'watchlist.manage',
}


def route_permission(method: str, path: str) -> tuple[str, ...]:
    """Every permission the route needs (empty: any signed-in user)."""
    needed = ROUTE_PERMISSIONS[(method, path)]
    return () if needed is None else (needed,) if isinstance(needed, str) else needed


def _gallery(world, kind="galleries"):
    name = unique("coll")
    body = {"name": name, "purpose": "test"}
    r = world["client"].post(f"/api/{kind}", json=body, headers=auth(world, "admin"))
    assert r.status_code == 201, r.text
    return name


def _deployment(world, authorised=True):
    c = world["client"]
    body = {"name": unique("dep"), "location": "here", "cameras": [{"camera": "c1"}],
            "watchlists": ["wanted"], "legal_basis": "test"}
    dep = c.post("/api/deployments", json=body, headers=auth(world, "admin")).json()
    if authorised:
        c.post(f"/api/deployments/{dep['id']}/authorise", json={}, headers=auth(world, "admin"))
    return dep["id"]


def _camera(world):
    name = unique("cam")
    r = world["client"].post("/api/cameras", json={"name": name, "source": "rtsp://10.0.0.8/s"},
                             headers=auth(world, "admin"))
    assert r.status_code == 201, r.text
    return name


def _started(world):
    dep = _deployment(world)
    r = world["client"].post(f"/api/deployments/{dep}/start", json={"fast": True, "max_seconds": 30},
                             headers=auth(world, "admin"))
    assert r.status_code == 200, r.text
    return dep


def _token_id(world, role):
    return world["client"].post("/api/me/tokens", json={"name": "t"}, headers=auth(world, role)).json()["id"]


def image_file(name="obama.jpg"):
    return {"image": (name, demo_bytes(name), "image/jpeg")}


# method, path -> function(world, role) returning (url, request kwargs)
CASES = {
    ("GET", "/api/me"): lambda w, r: ("/api/me", {}),
    ("GET", "/api/me/sessions"): lambda w, r: ("/api/me/sessions", {}),
    ("POST", "/api/me/tokens"): lambda w, r: ("/api/me/tokens", {"json": {"name": "x"}}),
    ("GET", "/api/me/tokens"): lambda w, r: ("/api/me/tokens", {}),
    ("GET", "/api/tokens"): lambda w, r: ("/api/tokens", {}),
    ("GET", "/api/searches"): lambda w, r: ("/api/searches?since=2020-01-01T00:00:00Z", {}),
    ("GET", "/api/galleries"): lambda w, r: ("/api/galleries", {}),
    ("GET", "/api/watchlists"): lambda w, r: ("/api/watchlists", {}),
    ("POST", "/api/galleries"): lambda w, r: ("/api/galleries", {"json": {"name": unique("g")}}),
    ("POST", "/api/watchlists"): lambda w, r: ("/api/watchlists", {"json": {"name": unique("w"), "purpose": "p"}}),
    ("GET", "/api/galleries/{name}"): lambda w, r: ("/api/galleries/custody", {}),
    ("GET", "/api/watchlists/{name}"): lambda w, r: ("/api/watchlists/wanted", {}),
    ("GET", "/api/galleries/{name}/subjects"): lambda w, r: ("/api/galleries/custody/subjects", {}),
    ("GET", "/api/watchlists/{name}/subjects"): lambda w, r: ("/api/watchlists/wanted/subjects", {}),
    ("POST", "/api/watchlists/{name}/authorise"): lambda w, r: (f"/api/watchlists/{_gallery(w, 'watchlists')}/authorise",
                                                                {"json": {}}),
    ("POST", "/api/watchlists/{name}/expire"): lambda w, r: (f"/api/watchlists/{_gallery(w, 'watchlists')}/expire", {}),
    ("POST", "/api/galleries/{name}/expire"): lambda w, r: (f"/api/galleries/{_gallery(w)}/expire", {}),
    ("POST", "/api/galleries/{name}/members"): lambda w, r: (f"/api/galleries/{_gallery(w)}/members",
                                                            {"json": {"subject_id": w["subject_id"]}}),
    ("POST", "/api/watchlists/{name}/members"): lambda w, r: (f"/api/watchlists/{_gallery(w, 'watchlists')}/members",
                                                              {"json": {"subject_id": w["subject_id"]}}),
    ("DELETE", "/api/galleries/{name}/members/{subject_id}"): lambda w, r: (
        f"/api/galleries/{_gallery(w)}/members/{w['subject_id']}", {}),
    ("DELETE", "/api/watchlists/{name}/members/{subject_id}"): lambda w, r: (
        f"/api/watchlists/{_gallery(w, 'watchlists')}/members/{w['subject_id']}", {}),
    ("DELETE", "/api/galleries/{name}"): lambda w, r: (f"/api/galleries/{_with_subject(w, 'galleries')}",
                                                       {"json": {"reason": "test"}}),
    ("DELETE", "/api/watchlists/{name}"): lambda w, r: (f"/api/watchlists/{_with_subject(w, 'watchlists')}",
                                                        {"json": {"reason": "test"}}),
    ("POST", "/api/galleries/{name}/enrol"): lambda w, r: (f"/api/galleries/{_gallery(w)}/enrol",
                                                          {"files": image_file(), "data": {"subject_name": "X Y"}}),
    ("POST", "/api/watchlists/{name}/enrol"): lambda w, r: (f"/api/watchlists/{_gallery(w, 'watchlists')}/enrol",
                                                            {"files": image_file(), "data": {"subject_name": "X Y"}}),
    ("POST", "/api/search"): lambda w, r: ("/api/search", {"files": {"probe": ("p.jpg", demo_bytes("obama_small.jpg"),
                                                                                 "image/jpeg")},
                                                          "data": {"gallery": "custody", "case_ref": "C1",
                                                                   "reason": "test", "top": "3"}}),
    ("GET", "/api/subjects/{subject_id}"): lambda w, r: (f"/api/subjects/{w['subject_id']}", {}),
    ("GET", "/api/subjects/{subject_id}/image"): lambda w, r: (f"/api/subjects/{w['subject_id']}/image", {}),
    ("DELETE", "/api/subjects/{subject_id}"): lambda w, r: (f"/api/subjects/{_erasable(w)}",
                                                           {"json": {"reason": "erasure request"}}),
    ("GET", "/api/deployments"): lambda w, r: ("/api/deployments", {}),
    ("GET", "/api/cameras"): lambda w, r: ("/api/cameras", {}),
    ("POST", "/api/cameras"): lambda w, r: ("/api/cameras", {"json": {"name": unique("cam"),
                                                                      "source": "rtsp://10.0.0.7/stream1"}}),
    ("DELETE", "/api/cameras/{name}"): lambda w, r: (f"/api/cameras/{_camera(w)}", {}),
    ("POST", "/api/deployments"): lambda w, r: ("/api/deployments", {"json": {
        "name": unique("d"), "location": "x", "cameras": [{"camera": "c1"}],
        "watchlists": ["wanted"], "legal_basis": "b"}}),
    ("GET", "/api/deployments/{dep_id}"): lambda w, r: (f"/api/deployments/{w['deployment_id']}", {}),
    ("GET", "/api/deployments/{dep_id}/authorisation"): lambda w, r: (
        f"/api/deployments/{w['deployment_id']}/authorisation", {}),
    ("POST", "/api/deployments/{dep_id}/reject"): lambda w, r: (
        f"/api/deployments/{_deployment(w, authorised=False)}/reject", {"json": {"reason": "no legal basis given"}}),
    ("POST", "/api/deployments/{dep_id}/authorise"): lambda w, r: (
        f"/api/deployments/{_deployment(w, authorised=False)}/authorise", {"json": {}}),
    ("POST", "/api/deployments/{dep_id}/place"): lambda w, r: (
        f"/api/deployments/{_deployment(w, authorised=False)}/place", {"json": {"placement": "site:harbour"}}),
    ("POST", "/api/deployments/{dep_id}/cancel"): lambda w, r: (
        f"/api/deployments/{_deployment(w, authorised=False)}/cancel", {"json": {"reason": "plan withdrawn"}}),
    ("POST", "/api/deployments/{dep_id}/start"): lambda w, r: (f"/api/deployments/{_deployment(w)}/start",
                                                              {"json": {"fast": True}}),
    ("POST", "/api/deployments/{dep_id}/stop"): lambda w, r: (f"/api/deployments/{_started(w)}/stop", {}),
    ("POST", "/api/deployments/{dep_id}/outcomes"): lambda w, r: (f"/api/deployments/{w['deployment_id']}/outcomes",
                                                                 {"json": {"engagements": 1, "arrests": 0}}),
    ("GET", "/api/alerts"): lambda w, r: ("/api/alerts", {}),
    ("GET", "/api/alerts/stream"): lambda w, r: ("/api/alerts/stream?once=true&after_id=0", {}),
    ("GET", "/api/alerts/{alert_id}"): lambda w, r: (f"/api/alerts/{w['alert_id']}", {}),
    ("GET", "/api/alerts/{alert_id}/clip.avi"): lambda w, r: (f"/api/alerts/{w['alert_id']}/clip.avi", {}),
    ("GET", "/api/alerts/{alert_id}/{which}.jpg"): lambda w, r: (f"/api/alerts/{w['alert_id']}/probe.jpg", {}),
    ("POST", "/api/alerts/{alert_id}/decision"): lambda w, r: (f"/api/alerts/{_undecided_alert(w)}/decision",
                                                              {"json": {"decision": "confirmed", "outcome": "engaged"}}),
    ("GET", "/api/audit"): lambda w, r: ("/api/audit?limit=5", {}),
    ("GET", "/api/audit/verify"): lambda w, r: ("/api/audit/verify", {}),
    ("GET", "/api/reports/deployments/{dep_id}"): lambda w, r: (f"/api/reports/deployments/{w['deployment_id']}", {}),
    ("GET", "/api/reports/annual/{year}"): lambda w, r: ("/api/reports/annual/2026?format=csv", {}),
    ("POST", "/api/retention/run"): lambda w, r: ("/api/retention/run", {}),
    ("GET", "/api/users"): lambda w, r: ("/api/users", {}),
    ("POST", "/api/users"): lambda w, r: ("/api/users", {"json": {"username": unique("u"), "role": "operator"}}),
    ("POST", "/api/users/{username}/disable"): lambda w, r: (f"/api/users/{_user(w)}/disable", {}),
    ("POST", "/api/users/{username}/enable"): lambda w, r: (f"/api/users/{_user(w)}/enable", {}),
    ("POST", "/api/users/{username}/reset-password"): lambda w, r: (f"/api/users/{_user(w)}/reset-password", {}),
    ("POST", "/api/users/{username}/role"): lambda w, r: (f"/api/users/{_user(w)}/role",
                                                          {"json": {"role": "operator"}}),
    ("POST", "/api/tokens/{token_id}/revoke"): lambda w, r: (f"/api/tokens/{_token_id(w, r if r else 'admin')}/revoke",
                                                            {}),
}


def _with_subject(world, kind):
    """A new collection holding one subject enrolled only there (deleting it erases them)."""
    name = _gallery(world, kind)
    r = world["client"].post(f"/api/{kind}/{name}/enrol", files=image_file("biden.jpg"),
                             data={"subject_name": "Joe Biden"}, headers=auth(world, "admin"))
    assert r.status_code == 201, r.text
    return name


def _erasable(world):
    name = _gallery(world)
    r = world["client"].post(f"/api/galleries/{name}/enrol", files=image_file("biden.jpg"),
                             data={"subject_name": "Joe Biden"}, headers=auth(world, "admin"))
    assert r.status_code == 201, r.text
    return r.json()["subject_id"]


def _undecided_alert(world):
    """A new undecided alert (a copy of the world's, without images): the first decision on an
    alert needs alert.decide; changing one is a revision (alert.revise, tested in tests/services)."""
    from vigil.store.schema import Alert

    with world["vigil"].store.session() as s:
        a = s.get(Alert, world["alert_id"])
        copy = Alert(deployment_id=a.deployment_id, camera=a.camera, source_time=a.source_time, track_id=a.track_id,
                     subject_id=a.subject_id, subject_name=a.subject_name, category=a.category, score=a.score,
                     threshold=a.threshold, fmr=a.fmr)
        s.add(copy)
        s.flush()
        return copy.id


def _user(world):
    name = unique("user")
    world["client"].post("/api/users", json={"username": name, "role": "auditor"}, headers=auth(world, "admin"))
    return name


def test_every_route_has_a_case(world):
    routes = {(m, p) for m, p, _ in api_routes(world["app"])} - PUBLIC
    assert routes == set(CASES), f"missing: {routes - set(CASES)}; stale: {set(CASES) - routes}"
    declared = set(ROUTE_PERMISSIONS) - PUBLIC
    assert routes == declared, f"no declared permission: {routes - declared}; stale: {declared - routes}"


def _matrix(app):
    out = []
    for method, path, route in api_routes(app):
        if (method, path) in PUBLIC:
            continue
        for role in ROLES:
            out.append((method, path, role))
    return out


@pytest.mark.slow
def test_role_matrix(world):
    client = world["client"]
    failures = []
    checked = 0
    for method, path, route in sorted(api_routes(world["app"]), key=lambda x: (x[1], x[0])):
        if (method, path) in PUBLIC:
            continue
        permission = route_permission(method, path)
        for role in ROLES:
            url, kwargs = CASES[(method, path)](world, role)
            r = client.request(method, url, headers=auth(world, role), **kwargs)
            expected_ok = all(allowed(role, p) for p in permission)
            checked += 1
            if expected_ok and not r.status_code < 300:
                failures.append(f"{role} {method} {path} -> {r.status_code} {r.text[:160]}")
            if not expected_ok and r.status_code != 403:
                failures.append(f"{role} {method} {path} -> {r.status_code}, expected 403 ({permission})")
        url, kwargs = CASES[(method, path)](world, None)
        r = client.request(method, url, **kwargs)
        if r.status_code != 401:
            failures.append(f"anonymous {method} {path} -> {r.status_code}, expected 401")
    world["app"].state.live.stop_all()
    assert not failures, "\n".join(failures)
    assert checked >= 40 * len(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_me_reports_role_and_permissions(world, role):
    data = world["client"].get("/api/me", headers=auth(world, role)).json()
    assert data["role"] == role and all(allowed(role, p) for p in data["permissions"])
