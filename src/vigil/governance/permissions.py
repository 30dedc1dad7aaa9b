"""The one permission table. The API and the CLI both ask :func:`require`.

Roles (see docs/roles.md for the reasoning):
- admin: everything, including users, keys, backups and retention.
- supervisor: authorises watchlists and deployments, runs deployments, manages watchlists,
  erases subjects, sees audit and reports.
- operator: runs authorised deployments, watches and adjudicates alerts.
- investigator: retrospective search, galleries and watchlist building (enrolment).
- auditor: read-only: audit trail, verification, reports, deployment records.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.errors import PermissionDenied

ROLES = ("admin", "supervisor", "operator", "investigator", "auditor")

PERMISSIONS: dict[str, set[str]] = {
    # store & retrospective search
    "collection.view": {"admin", "supervisor", "operator", "investigator"},
    "gallery.manage": {"admin", "investigator"},
    "watchlist.manage": {"admin", "supervisor", "investigator"},
    "watchlist.authorise": {"admin", "supervisor"},
    "subject.view": {"admin", "supervisor", "investigator"},
    "subject.delete": {"admin", "supervisor"},
    "subject.export": {"admin", "supervisor"},
    "search.run": {"admin", "investigator"},
    "search.view": {"admin", "supervisor", "investigator", "auditor"},
    "search.export": {"admin", "investigator"},
    "image.view": {"admin", "supervisor", "operator", "investigator"},
    # live
    "deployment.view": {"admin", "supervisor", "operator", "auditor"},
    "deployment.create": {"admin", "supervisor", "operator"},
    "deployment.authorise": {"admin", "supervisor"},
    "deployment.run": {"admin", "supervisor", "operator"},
    "deployment.trial": {"admin", "supervisor"},
    "deployment.record": {"admin", "supervisor", "operator"},
    "camera.manage": {"admin"},  # the registered cameras: the only sources a deployment may read
    "alert.view": {"admin", "supervisor", "operator"},
    "alert.decide": {"admin", "supervisor", "operator"},
    "alert.revise": {"admin", "supervisor"},  # change a decision already recorded (with a reason)
    "alert.export": {"admin", "supervisor"},
    # accountability
    "audit.view": {"admin", "supervisor", "auditor"},
    "report.view": {"admin", "supervisor", "auditor"},
    "user.manage": {"admin"},
    "token.manage_own": {"admin", "supervisor", "operator", "investigator", "auditor"},
    "system.admin": {"admin"},  # keys, backup/restore, db copy, reindex, retention, calibration
    "model.manage": {"admin"},  # register/install recognisers, rebuild calibration tables (thresholds)
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a Vigil user (or the system itself for scheduled work)."""

    username: str
    role: str
    user_id: int | None = None
    via: str = "cli"  # cli | api | system

    def can(self, permission: str) -> bool:
        return allowed(self.role, permission)


SYSTEM = Actor("system", "admin", None, "system")


def allowed(role: str, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return role in PERMISSIONS[permission]


def require(actor: Actor, permission: str) -> None:
    if not allowed(actor.role, permission):
        raise PermissionDenied(f"{actor.username} ({actor.role}) may not {permission.replace('.', ' ')}")


def roles_with(permission: str) -> list[str]:
    return [r for r in ROLES if r in PERMISSIONS[permission]]
