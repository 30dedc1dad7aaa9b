"""One error format for every answer that is not a success: RFC 9457 problem details
(``application/problem+json``) with ``type``, ``title``, ``status`` and ``detail``, plus Vigil's
own fields: ``error`` (the kind of error, e.g. ``NotFoundError``), ``errors`` (each invalid
field of a refused request), ``reasons`` (why a face was refused) and ``incident`` (the log
line of an unexpected error). Clear 4xx answers, and never a traceback or an internal in
the body: an unexpected error is logged with an incident id and answered with a bare 500."""

from __future__ import annotations

import logging
import secrets
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from vigil.errors import VigilError, problem_details, problem_slug

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("vigil.api")

# the kind of error an HTTP status means when no Vigil error names it
KIND = {400: "BadRequest", 401: "AuthenticationError", 403: "PermissionDenied", 404: "NotFoundError",
        405: "MethodNotAllowed", 409: "ConflictError", 413: "RequestTooLarge", 422: "ValidationError",
        500: "InternalError"}
MAX_FIELD_ERRORS = 20
PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where: body, query, path, header, then the field")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, Vigil's way."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    type: str = Field(description="a URI naming the kind of problem (urn:vigil:problem:...)")
    title: str = Field(description="the HTTP status's phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong, for the person using Vigil")
    error: str = Field(description="Vigil's kind of error, e.g. NotFoundError, ValidationError")
    errors: list[FieldError] | None = Field(None, description="each invalid field (422 on a malformed request)")
    reasons: list[str] | None = Field(None, description="why a face failed the quality gate")
    incident: str | None = Field(None, description="an unexpected error's id in the server log")


def problem_body(status: int, detail: str, kind: str | None = None, **extra) -> dict:
    kind = kind or KIND.get(status) or ("BadRequest" if status < 500 else "InternalError")
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = {"type": f"urn:vigil:problem:{problem_slug(kind)}", "title": title, "status": status, "detail": detail,
            "error": kind}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem(status: int, detail: str, kind: str | None = None, *, headers: dict | None = None,
            **extra) -> JSONResponse:
    """A problem-details response."""
    return JSONResponse(problem_body(status, detail, kind, **extra), status_code=status, headers=headers,
                        media_type=PROBLEM_JSON)


def allowed_methods(request: Request) -> list[str] | None:
    """Every method some route serves at this path (Starlette names only the methods of the
    first route whose path matches, so ``Allow`` missed those of its siblings); None where a
    mounted application answers every method itself."""
    methods = []
    for method in PROBED_METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            methods.append(method)
    return None if len(methods) == len(PROBED_METHODS) else methods


def _field_errors(exc: RequestValidationError) -> list[dict]:
    """Where and what, never the input itself (it may be megabytes, or a password)."""
    out = []
    for err in exc.errors()[:MAX_FIELD_ERRORS]:
        loc = [p if isinstance(p, int) else str(p)[:80] for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", ""))[:300], "type": str(err.get("type", ""))[:60]})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(VigilError)
    async def vigil_error(request: Request, exc: VigilError):
        body = problem_details(exc)
        headers = {"WWW-Authenticate": "Bearer"} if body["status"] == 401 else None
        return JSONResponse(body, status_code=body["status"], headers=headers, media_type=PROBLEM_JSON)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = _field_errors(exc)
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'request'}: {e['msg']}"
                           for e in errors) or "the request is not valid"
        return problem(422, detail, "ValidationError", errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            methods = allowed_methods(request) or [m.strip() for m in headers.get("Allow", "").split(",") if m]
            headers["Allow"] = ", ".join(methods)
            detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        else:
            detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem(exc.status_code, detail, headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        incident = secrets.token_hex(6)
        log.error("incident %s: %s %s failed with %s", incident, request.method, request.url.path,
                  exc.__class__.__name__)
        return problem(500, f"an unexpected error occurred; the server log names it incident {incident}",
                       "InternalError", incident=incident)
