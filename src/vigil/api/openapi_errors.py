"""The published OpenAPI document declares, for every operation, each error status it can
answer and that every error body is a problem (``application/problem+json``, schema
``Problem``), so that a client generated from it, or a fuzzer checking against it, meets no
undocumented answer.

Which statuses an operation can answer follows from what it is:

- every operation: 500 (an unexpected error, answered without internals);
- with parameters or a body: 422 (the request does not fit the schema);
- with a body: 413 (over the upload limit);
- authenticated (a ``security`` requirement): 401 (no or an ended credential), 403 (the role lacks the permission),
  400 (a rule about the values), 404 (what it names does not exist);
- authenticated and changing state: 409 (a conflict with the current state);
- changing state: 403 (a cookie-authenticated request from another origin is refused)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from vigil.api.errors import PROBLEM_JSON, Problem

DESCRIPTIONS = {
    400: "A value breaks one of Vigil's rules",
    401: "Not authenticated, or the credential has ended",
    403: "The role lacks the permission, or a cross-origin request with the session cookie",
    404: "What the request names does not exist",
    409: "Conflicts with the current state",
    413: "The request body is over the upload limit",
    422: "The request does not fit the schema, or the image or face cannot be used",
    500: "An unexpected error (logged with the incident id; no internals in the answer)",
}
SAFE = {"get", "head", "options"}
# operations that read a credential if there is one but need none (log-out always succeeds)
CREDENTIAL_OPTIONAL = {("post", "/api/logout")}


def statuses(path: str, method: str, operation: dict) -> set[int]:
    """The error statuses an operation of the OpenAPI document can answer."""
    codes = {500}
    if operation.get("parameters") or operation.get("requestBody"):
        codes.add(422)
    if operation.get("requestBody"):
        codes.add(413)
    if method not in SAFE:
        codes.add(403)
    if operation.get("security") and (method, path) not in CREDENTIAL_OPTIONAL:
        codes |= {400, 401, 403, 404}
        if method not in SAFE:
            codes.add(409)
    if path == "/api/token":
        codes.add(401)  # wrong credentials, or too many failures from this account or address
    return codes


def _problem_components() -> dict:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {**defs, "Problem": schema}


def _response(code: int) -> dict:
    return {"description": DESCRIPTIONS[code],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def declare_problems(app: FastAPI) -> None:
    """Replace the app's OpenAPI document with one that declares every error answer."""

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for code in sorted(statuses(path, method, operation)):
                    responses[str(code)] = _response(code)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        components.update(_problem_components())
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
