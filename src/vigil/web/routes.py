"""The console's page routes. Each page is a small server-rendered shell (layout, navigation,
forms the user's role may use); its JavaScript module fills it from the JSON API with
``fetch``, using the same HttpOnly session cookie (``vigil_session``) that ``POST /api/token``
sets. The server decides what the navigation shows from the user's permissions, and the API
enforces them again on every call (403)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from vigil import __version__
from vigil.errors import VigilError
from vigil.services import Actor
from vigil.services.authentication import actor_from_credential, logout
from vigil.services.collections import CATEGORIES, permissions_of

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
COOKIE = "vigil_session"

# Pages only load their own code and styles and call their own origin; images may be
# data: URLs (search crops, report charts) or blob: URLs (the local preview before enrolment).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class NavItem:
    key: str
    href: str
    label: str
    permission: str | None
    blurb: str


NAV = (
    NavItem("home", "/", "Home", None, ""),
    NavItem("alerts", "/alerts", "Live alerts", "alert.view",
            "The queue of live alerts, updated as they arrive; compare and record a decision."),
    NavItem("deployments", "/deployments", "Deployments", "deployment.view",
            "Create, authorise, start and stop live deployments; see their status and final record."),
    NavItem("watchlists", "/watchlists", "Watchlists", "collection.view",
            "Watchlists for live deployments: create, enrol, authorise, expire, delete."),
    NavItem("galleries", "/galleries", "Galleries", "collection.view",
            "Reference galleries for retrospective search: create, enrol, delete."),
    NavItem("search", "/search", "Retrospective search", "search.run",
            "Search a probe image or video against a gallery or watchlist, for a case."),
    NavItem("audit", "/audit", "Audit trail", "audit.view",
            "Every action recorded, with filters and the verification of the tamper-evident chain."),
    NavItem("reports", "/reports", "Reports", "report.view",
            "Transparency reports: deployments, alerts, false alerts and outcomes, with charts."),
)

templates = Jinja2Templates(directory=str(TEMPLATES))


def static_url(name: str) -> str:
    return f"/static/{name}?v={__version__}"


templates.env.globals["static"] = static_url


def session_actor(request: Request) -> Actor | None:
    """The user behind the session cookie (or a Bearer header), or None if there is none or it is
    no longer valid (expired, user disabled)."""
    token = request.cookies.get(COOKIE)
    header = request.headers.get("authorization", "")
    if not token and header.lower().startswith("bearer "):
        token = header[7:].strip()
    if not token:
        return None
    try:
        return actor_from_credential(request.app.state.vigil, token, via="console")
    except VigilError:
        return None


def safe_next(value: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or value.startswith("/api/"):
        return "/"
    return value


def _headers(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers[key] = value
    return response


def render(request: Request, template: str, *, title: str, actor: Actor | None, active: str = "",
           status_code: int = 200, **context) -> Response:
    perms = sorted(permissions_of(actor)) if actor else []
    nav = [item for item in NAV if item.permission is None or item.permission in perms] if actor else []
    response = templates.TemplateResponse(request, template, {
        "title": title, "user": actor, "perms": perms, "can": lambda p: p in perms, "nav": nav,
        "active": active, "version": __version__, **context}, status_code=status_code)
    return _headers(response)


def page(request: Request, template: str, *, title: str, active: str, permission: str | None = None,
         **context) -> Response:
    actor = session_actor(request)
    if actor is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _headers(RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303))
    if permission and permission not in permissions_of(actor):
        return render(request, "forbidden.html", title="Not allowed", actor=actor, active=active,
                      status_code=403, needed=permission)
    return render(request, template, title=title, actor=actor, active=active, **context)


router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_page(request: Request, next: str = "/"):
    target = safe_next(next)
    if session_actor(request) is not None:
        return _headers(RedirectResponse(target, status_code=303))
    return render(request, "login.html", title="Log in", actor=None, next=target)


@router.post("/logout")
def logout_page(request: Request):
    logout(request.app.state.vigil, request.cookies.get(COOKIE))  # ends the server-side session too
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return _headers(response)


@router.get("/")
def home(request: Request):
    actor = session_actor(request)
    waiting, more_waiting = [], False
    if actor is not None and "deployment.authorise" in permissions_of(actor):
        from vigil.services.deployments import list_deployments

        plans = list_deployments(request.app.state.vigil, actor, "draft", limit=20)  # waiting for a supervisor
        waiting, more_waiting = plans.items, plans.next_cursor is not None
    return page(request, "home.html", title="Vigil console", active="home", items=[n for n in NAV if n.permission],
                waiting=waiting, more_waiting=more_waiting)


@router.get("/alerts")
def alerts(request: Request, deployment_id: int | None = None):
    return page(request, "alerts.html", title="Live alerts", active="alerts", permission="alert.view",
                deployment_id=deployment_id)


@router.get("/deployments")
def deployments(request: Request):
    return page(request, "deployments.html", title="Deployments", active="deployments",
                permission="deployment.view")


@router.get("/deployments/{dep_id}")
def deployment(request: Request, dep_id: int):
    return page(request, "deployment.html", title=f"Deployment {dep_id}", active="deployments",
                permission="deployment.view", dep_id=dep_id)


def _collection_pages(plural: str, kind: str, label: str) -> None:
    manage = "gallery.manage" if kind == "gallery" else "watchlist.manage"

    @router.get(f"/{plural}", name=f"{plural}_list")
    def listing(request: Request):
        return page(request, "collections.html", title=label, active=plural, permission="collection.view",
                    kind=kind, plural=plural, manage=manage, categories=CATEGORIES)

    @router.get(f"/{plural}/{{name}}", name=f"{plural}_detail")
    def detail(request: Request, name: str):
        return page(request, "collection.html", title=f"{'Watchlist' if kind == 'watchlist' else 'Gallery'}: {name}",
                    active=plural, permission="collection.view", kind=kind, plural=plural, name=name,
                    manage=manage, categories=CATEGORIES)


_collection_pages("watchlists", "watchlist", "Watchlists")
_collection_pages("galleries", "gallery", "Galleries")


@router.get("/search")
def search(request: Request):
    return page(request, "search.html", title="Retrospective search", active="search", permission="search.run")


@router.get("/audit")
def audit(request: Request):
    return page(request, "audit.html", title="Audit trail", active="audit", permission="audit.view")


@router.get("/reports")
def reports(request: Request):
    from vigil.timeutil import utcnow

    return page(request, "reports.html", title="Transparency reports", active="reports", permission="report.view",
                year=utcnow().year)


def mount_console(app: FastAPI) -> None:
    """Add the console's pages and its static files (CSS, JavaScript, logo) to the API app."""
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(router)
