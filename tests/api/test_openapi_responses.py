"""The OpenAPI document declares what every operation answers (issue #15), and the real
answers fit it:

- every 2xx answer declares a non-empty schema for each of its content types (a 204 has no
  body), and each operation declares one 2xx (the enrolment's preview, 200, beside its 201);
- every error answer is a problem (``application/problem+json``, schema ``Problem``);
- every response model forbids the fields it does not list: FastAPI filters an answer through
  its model, so a field the model forgot would otherwise vanish silently; forbidden, it fails
  the request, and the tests below see it;
- a real answer of every operation (the role matrix's requests, as an administrator, and a few
  more) validates against the document: every required field there, no undocumented one;
- the services' own results for the main shapes have exactly their model's fields.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from tests.api.conftest import auth
from tests.api.test_roles import CASES, _started, api_routes, image_file
from tests.governance.test_anchor import anchor_env, anchored  # noqa: F401  (fixtures)
from vigil.api import responses as models
from vigil.timeutil import utcnow

PROBLEM = "application/problem+json"
# the one operation with two successes: a preview (200, nothing stored) and an enrolment (201)
TWO_SUCCESSES = {("post", "/api/galleries/{name}/enrol"), ("post", "/api/watchlists/{name}/enrol")}


@pytest.fixture(scope="module")
def document(world):
    return world["app"].openapi()


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_every_success_declares_a_schema(document):
    missing, counts = [], []
    for method, path, operation in operations(document):
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        if len(successes) != (2 if (method, path) in TWO_SUCCESSES else 1):
            counts.append(f"{method} {path}: {sorted(successes)}")
        for code, response in successes.items():
            content = response.get("content") or {}
            if code == "204" and not content:
                continue
            if not content:
                missing.append(f"{method} {path} {code}: no content")
            for media, body in content.items():
                schema = body.get("schema") or {}
                if not schema:
                    missing.append(f"{method} {path} {code} {media}: no schema")
                elif media == "application/json" and "$ref" not in schema:
                    missing.append(f"{method} {path} {code}: JSON without a named model: {schema}")
    assert not missing, "\n".join(missing)
    assert not counts, "operations declaring more or fewer successes than they have:\n" + "\n".join(counts)


def test_every_error_is_a_problem(document):
    wrong = [f"{method} {path} {code}: {sorted(r.get('content') or {})}"
             for method, path, operation in operations(document)
             for code, r in operation["responses"].items()
             if not code.startswith("2") and (r.get("content") or {}) != {
                 PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}]
    assert not wrong, "\n".join(wrong)


def _models_in(annotation) -> typing.Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models_in(field.annotation)
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _declared_models(route: APIRoute) -> list[type[BaseModel]]:
    declared = [route.response_model] if route.response_model is not None else []
    return declared + [r["model"] for r in route.responses.values() if "model" in r]


def test_every_json_route_has_a_model_that_forbids_unknown_fields(world):
    lax, without = set(), []
    for method, path, route in api_routes(world["app"]):
        response_class = getattr(route.response_class, "value", route.response_class)
        declared = _declared_models(route)
        if issubclass(response_class, JSONResponse) and not declared:
            without.append(f"{method} {path}")
        for model in (m for d in declared for m in _models_in(d)):
            if model.model_config.get("extra") != "forbid":
                lax.add(model.__name__)
    assert not without, f"JSON routes without a response model: {without}"
    assert not lax, f"response models that would drop an unlisted field silently: {sorted(lax)}"


def test_fields_only_some_answers_carry_stay_absent(world):
    """A field declared with ``sometimes`` is absent from some answers: its route answers as the
    service did (``response_model_exclude_unset``), rather than adding it as null."""
    wrong = []
    for method, path, route in api_routes(world["app"]):
        optional = {f"{m.__name__}.{name}" for d in _declared_models(route) for m in _models_in(d)
                    for name, field in m.model_fields.items() if models.is_sometimes(field)}
        if optional and route.response_model is not None and not route.response_model_exclude_unset:
            wrong.append(f"{method} {path}: {sorted(optional)}")
    assert not wrong, "\n".join(wrong)


def _extra_requests(world) -> list[tuple[str, str, str, dict]]:
    """(method, path template, url, request kwargs): answers the role matrix does not reach."""
    return [
        ("GET", "/api/health", "/api/health", {}),
        ("GET", "/api/deployments/{dep_id}", f"/api/deployments/{_started(world)}", {}),  # with its live run
        ("POST", "/api/galleries/{name}/enrol", "/api/galleries/custody/enrol",
         {"files": image_file(), "data": {"preview": "true"}}),
        ("POST", "/api/search", "/api/search",
         {"files": {"probe": ("cam.mp4", Path(world["video"]).read_bytes(), "video/mp4")},
          "data": {"watchlist": "wanted", "case_ref": "C2", "reason": "video test"}}),
        ("GET", "/api/reports/annual/{year}", f"/api/reports/annual/{utcnow().year}?include_trials=true", {}),
        ("GET", "/api/reports/deployments/{dep_id}", f"/api/reports/deployments/{world['deployment_id']}?format=html",
         {}),
        ("GET", "/api/audit", "/api/audit?format=csv&limit=3", {}),
        ("POST", "/api/users/{username}/role", "/api/users/investigator1/role", {"json": {"role": "investigator"}}),
    ]


def misfits(document, method: str, path: str, r) -> list[str]:
    """How an answer departs from what the document declares for it (nothing: it fits)."""
    import jsonschema_rs

    where = f"{method} {r.request.url.path}"
    if r.status_code >= 300:
        return [f"{where}: {r.status_code} {r.text[:200]}"]
    declared = document["paths"][path][method.lower()]["responses"].get(str(r.status_code))
    media = r.headers.get("content-type", "").split(";")[0]
    if declared is None or media not in (declared.get("content") or {}):
        return [f"{where}: {r.status_code} {media} is not declared"]
    if media != "application/json":
        return []
    schema = {**declared["content"][media]["schema"], "components": document["components"]}
    validator = jsonschema_rs.validator_for(schema)
    errors = [f"{e.instance_path}: {e.message}"[:300] for e in validator.iter_errors(r.json())]
    return [f"{where}: " + "; ".join(errors[:5])] if errors else []


def test_real_answers_fit_the_document(world, document):
    pytest.importorskip("jsonschema_rs", reason="pip install -e '.[test]' (schemathesis)")
    client = world["client"]
    requests = [(m, p, *CASES[(m, p)](world, "admin")) for m, p in sorted(CASES, key=lambda k: (k[1], k[0]))]
    failures, checked = [], set()
    try:
        for method, path, url, kwargs in requests + _extra_requests(world):
            r = client.request(method, url, headers=auth(world, "admin"), **kwargs)
            failures += misfits(document, method, path, r)
            checked.add((method, path))
    finally:
        world["app"].state.live.stop_all()
    assert not failures, "\n".join(failures)
    assert len(checked) == len(set(CASES) | {("GET", "/api/health")})


def test_login_and_logout_fit_the_document(world, document):
    pytest.importorskip("jsonschema_rs", reason="pip install -e '.[test]' (schemathesis)")
    client = world["client"]
    login = client.post("/api/token", data={"username": "auditor1", "password": "auditor-password-123"})
    failures = misfits(document, "POST", "/api/token", login)
    session = {"Authorization": f"Bearer {login.json()['access_token']}"}
    failures += misfits(document, "GET", "/api/me", client.get("/api/me", headers=session))
    logout = client.post("/api/logout", headers=session)
    failures += misfits(document, "POST", "/api/logout", logout)
    assert logout.json()["session_ended"] is True
    failures += misfits(document, "POST", "/api/logout", client.post("/api/logout"))  # nothing to end
    client.cookies.clear()
    assert not failures, "\n".join(failures)


def _service_results(world) -> list[tuple[str, object, type[BaseModel]]]:
    from vigil.services import alerts, audit_views, collections, reports, subjects
    from vigil.services.authorisation_view import authorisation_view
    from vigil.services.deployments import show_deployment

    vigil = world["vigil"]
    admin = vigil.cli_actor()
    dep = world["deployment_id"]
    return [
        ("show_alert", alerts.show_alert(vigil, admin, world["alert_id"]), models.AlertDetail),
        ("show_deployment", {**show_deployment(vigil, admin, dep), "live": None}, models.DeploymentDetail),
        ("authorisation_view", authorisation_view(vigil, admin, dep), models.AuthorisationView),
        ("show_collection", collections.show_collection(vigil, admin, "watchlist", "wanted"), models.Collection),
        ("show_subject", subjects.show_subject(vigil, admin, world["subject_id"]), models.Subject),
        ("verify_audit", audit_views.verify_audit(vigil, admin), models.AuditVerification),
        ("deployment_report", reports.deployment_report(vigil, admin, dep), models.DeploymentRecord),
        ("annual_report", reports.annual_report(vigil, admin, utcnow().year, include_trials=True), models.AnnualReport),
    ]


def test_service_results_have_exactly_the_models_fields(world):
    """Each service result has every required field of its model and no field the model does not
    list (nested ones too: the model forbids unlisted fields and requires the listed ones)."""
    for name, result, model in _service_results(world):
        fields = {f.alias or key for key, f in model.model_fields.items()}
        required = {f.alias or key for key, f in model.model_fields.items() if f.is_required()}
        assert required <= set(result) <= fields, (name, sorted(set(result) ^ fields))
        model.model_validate(result)


@pytest.mark.parametrize("anchor_env", ["file"], indirect=True)
def test_a_verification_with_an_anchor_fits_its_model(anchored):
    from vigil.services.audit_views import verify_audit

    result = verify_audit(anchored, anchored.cli_actor())
    assert result["ok"] and result["anchor"]["records"] > 0
    models.AuditVerification.model_validate(result)
