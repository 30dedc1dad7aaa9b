"""Authentication for the API: who is calling. A Bearer header or the console's session
cookie carries a signed access token (``POST /api/token``) or a long-lived API token
(``vgl_...``); :func:`current_actor` resolves it through the service layer, which checks the
login session and the user in the database on every request (so logout, a password reset or
a disable works at once). Authorisation is not done here: every service function checks
its own permission and raises ``PermissionDenied`` (403)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from vigil.api.errors import problem
from vigil.errors import AuthenticationError
from vigil.services import Actor
from vigil.services.authentication import Credentials, authenticate

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/token", auto_error=False)
COOKIE = "vigil_session"


def bearer_or_cookie(request: Request, token: str | None) -> str | None:
    return token or request.cookies.get(COOKIE)


def current_credentials(request: Request, token: str | None = Depends(oauth2)) -> Credentials:
    """The caller and the login session their credential belongs to (401 if none or invalid)."""
    token = bearer_or_cookie(request, token)
    if not token:
        raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
    try:
        return authenticate(request.app.state.vigil, token, via="api")
    except AuthenticationError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def current_actor(credentials: Credentials = Depends(current_credentials)) -> Actor:
    """The calling user (authentication only: the service called next checks the permission)."""
    return credentials.actor


# -- cross-site request forgery: the session cookie goes with any request a browser sends, --
# -- so a state change authenticated by the cookie alone must come from the console's origin --
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
LOGIN_PATH = "/api/token"
DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, the default port left out; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[parts.scheme] else "")


def cross_site_refusal(request: Request, trusted_origins: tuple[str, ...] = ()) -> str | None:
    """Why a cookie-authenticated state change is refused (None if it is not refused).

    It must name its origin (``Origin``, else ``Referer``, which browsers send with every
    state-changing request) and that origin must be the one the request was sent to, or one of
    ``trusted_origins`` (the public address in front of a proxy that rewrites ``Host``). A
    login is refused only if it names a foreign origin (no login CSRF; scripts name none).
    Requests with an ``Authorization`` header are not affected: a browser never adds one to
    a cross-site request without the server's consent (Vigil gives none: no CORS)."""
    if request.method in SAFE_METHODS:
        return None
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if request.url.path == LOGIN_PATH:  # the form authenticates it, not the cookie; a page elsewhere
        if not claimed:                 # must not log a browser in (to the attacker's account)
            return None
    elif COOKIE not in request.cookies or "authorization" in request.headers:
        return None
    elif not claimed:
        return "a request authenticated by the session cookie must name its origin (Origin or Referer)"
    origin = _origin(claimed)
    own = _origin(f"{request.url.scheme}://{request.headers.get('host', '')}")
    if origin is not None and (origin == own or origin in {_origin(o) for o in trusted_origins}):
        return None
    return f"cross-site request refused: origin {claimed[:100]!r} is not this server's"


def cookie_secure(request: Request) -> bool:
    """The session cookie is ``Secure`` whenever the console is reached over TLS: served with a
    certificate, or behind a declared TLS-terminating proxy."""
    return request.url.scheme == "https" or bool(getattr(request.app.state, "secure_cookies", False))


class CrossSiteGuard:
    """ASGI middleware: every cookie-authenticated state change (the API's and the console's
    log-out alike) passes :func:`cross_site_refusal` before any route runs."""

    def __init__(self, app, trusted_origins: tuple[str, ...] = ()):
        self.app = app
        self.trusted_origins = tuple(trusted_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            why = cross_site_refusal(Request(scope), self.trusted_origins)
            if why:
                return await problem(403, why, "CrossSiteRequestRefused")(scope, receive, send)
        await self.app(scope, receive, send)
