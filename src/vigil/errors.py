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
