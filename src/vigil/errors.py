"""Errors that carry a message meant for the person using Vigil (no traceback needed)."""


class VigilError(Exception):
    """Base class: the message is shown to the user as is."""

    exit_code = 1


class ImageError(VigilError):
    """An input image could not be used (empty, corrupt, too large, unsupported...)."""

    exit_code = 2


class NoFaceError(VigilError):
    """No face was found where one was required."""

    exit_code = 3


class ModelError(VigilError):
    """A model pack could not be located, converted or loaded."""


class ModelMismatchError(VigilError):
    """Templates of different models were about to be compared."""


class AmbiguousFaceError(VigilError):
    """Several faces could be the one meant (a group photo): the user must choose one."""


class QualityError(VigilError):
    """A face failed the enrolment quality gate; ``reasons`` says why."""

    def __init__(self, message: str, reasons: list[str] | None = None):
        super().__init__(message)
        self.reasons = reasons or []


class NotFoundError(VigilError):
    exit_code = 4


class ConflictError(VigilError):
    exit_code = 5


class PermissionDenied(VigilError):
    exit_code = 6


class AuthenticationError(VigilError):
    exit_code = 7


class PolicyError(VigilError):
    """A rule refuses the action (missing case reference, deployment outside its window...)."""

    exit_code = 8


# One error format for every front end (RFC 9457 problem details): the API answers it with the
# HTTP status, the CLI prints it with --json and exits with the error's exit code.
HTTP_STATUS = (
    (AuthenticationError, 401),  # who you are is not established
    (PermissionDenied, 403),  # your role may not do this
    (NotFoundError, 404),
    (ConflictError, 409),  # the present state forbids it: it exists already, it is running, it ended
    (ModelMismatchError, 409),
    (ImageError, 422),  # the content cannot be used: an image, a face, a failed quality gate
    (NoFaceError, 422),
    (QualityError, 422),
    (AmbiguousFaceError, 422),
    (PolicyError, 422),  # a rule refuses it: no legal basis, outside its window, not authorised
    (VigilError, 400),  # the request breaks a rule of form: a missing reason, a value out of range
)


def http_status(exc: VigilError) -> int:
    return next(code for cls, code in HTTP_STATUS if isinstance(exc, cls))


def problem_slug(kind: str) -> str:
    """``NotFoundError`` -> ``not-found``; Vigil's general rule error -> ``bad-request``."""
    if kind == "VigilError":
        return "bad-request"
    out = "".join(f"-{c.lower()}" if c.isupper() else c for c in kind).strip("-")
    return out.removesuffix("-error") or "error"


def problem_details(exc: VigilError) -> dict:
    """The error as RFC 9457 problem details: ``type``, ``title``, ``status``, ``detail``, and
    Vigil's ``error`` (its kind) and, for a failed quality gate, ``reasons``."""
    from http import HTTPStatus

    status = http_status(exc)
    kind = exc.__class__.__name__
    body = {"type": f"urn:vigil:problem:{problem_slug(kind)}", "title": HTTPStatus(status).phrase,
            "status": status, "detail": str(exc), "error": kind}
    if isinstance(exc, QualityError) and exc.reasons:
        body["reasons"] = exc.reasons
    return body
