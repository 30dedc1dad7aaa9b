"""Mapping Vigil's errors to HTTP answers: clear 4xx, never a traceback."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from vigil.errors import (
    AuthenticationError, ConflictError, ImageError, ModelMismatchError, NoFaceError, NotFoundError,
    PermissionDenied, PolicyError, QualityError, VigilError,
)

STATUS = [
    (AuthenticationError, 401),
    (PermissionDenied, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ImageError, 422),
    (NoFaceError, 422),
    (QualityError, 422),
    (ModelMismatchError, 409),
    (PolicyError, 422),
    (VigilError, 400),
]


def install(app: FastAPI) -> None:
    @app.exception_handler(VigilError)
    async def vigil_error(request: Request, exc: VigilError):
        status = next(code for cls, code in STATUS if isinstance(exc, cls))
        body = {"detail": str(exc), "type": exc.__class__.__name__}
        if isinstance(exc, QualityError):
            body["reasons"] = exc.reasons
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)
