"""Fixtures for the console tests: an app per module (TestClient), a real server in a thread
for the browser tests, Debian's Chromium driven by Playwright, and axe-core for accessibility."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import need_service

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
# VIGIL_SCREENSHOTS=docs/screenshots (relative to the repository, or absolute) also writes the
# documentation's screenshots there: the pages named by check_page(..., doc=NAME), at the fixed
# 1280x800 viewport, as palette PNGs. Unset (ordinary runs) nothing outside test-artifacts/ is
# written. docs/console.md says how to refresh the committed copies.
DOC_SHOTS = (REPO / os.environ["VIGIL_SCREENSHOTS"]) if os.environ.get("VIGIL_SCREENSHOTS") else None
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM = os.environ.get("VIGIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
SAME_ORIGIN = {"Origin": "http://testserver"}  # a browser names the console's origin on every POST
PASSWORDS = {role: f"{role}-Passw0rd!" for role in ("supervisor", "operator", "investigator", "auditor")}


def axe_path() -> Path:
    env = os.environ.get("VIGIL_AXE_JS")
    return Path(env) if env else REPO / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def make_app(home: Path):
    from vigil.server import create_app
    from vigil.config import Settings

    home.mkdir(parents=True, exist_ok=True)
    return create_app(Settings(home=home), retention_every=None)


def add_users(client, admin: dict) -> None:
    """Log the client in as the first admin and create one user per other role."""
    r = client.post("/api/token", data={"username": admin["admin"], "password": admin["password"]})
    assert r.status_code == 200, r.text
    for role, password in PASSWORDS.items():
        r = client.post("/api/users", json={"username": role, "role": role, "password": password})
        assert r.status_code == 201, r.text
    client.post("/api/logout")
    client.cookies.clear()


@pytest.fixture(scope="module")
def console_app(tmp_path_factory):
    """An app with the first admin plus one user per role (username = role name)."""
    from fastapi.testclient import TestClient

    from vigil.services import forget_contexts

    app = make_app(tmp_path_factory.mktemp("console") / "home")
    with TestClient(app, headers=SAME_ORIGIN) as client:
        add_users(client, app.state.vigil.first_run)
        yield app
    forget_contexts()


@pytest.fixture()
def client(console_app):
    from fastapi.testclient import TestClient

    with TestClient(console_app, headers=SAME_ORIGIN) as c:
        yield c


def login(client, username: str, password: str) -> None:
    r = client.post("/api/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text


def login_as(client, app, role: str) -> None:
    if role == "admin":
        first = app.state.vigil.first_run
        login(client, first["admin"], first["password"])
    else:
        login(client, role, PASSWORDS[role])


# -- a real server for the browser ---------------------------------------------------------
class LiveServer:
    def __init__(self, app):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = app
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="console-server", daemon=True)

    def start(self) -> None:
        import httpx

        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the test server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser_tools():
    """Playwright, Chromium and axe-core, or a skip (a failure with VIGIL_REQUIRE_SERVICES=1)."""
    try:
        import playwright.sync_api  # noqa: F401
        have_playwright = True
    except ImportError:
        have_playwright = False
    need_service(have_playwright, "the playwright Python package is not installed (pip install playwright)")
    need_service(Path(CHROMIUM).exists() or bool(shutil.which(CHROMIUM)),
                 f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    axe = axe_path()
    need_service(axe.is_file(), f"axe-core not found at {axe} (npm install --prefix .cache/axe axe-core@4, "
                                "or set VIGIL_AXE_JS)")
    return {"axe": axe}


@pytest.fixture(scope="module")
def live_server(browser_tools, tmp_path_factory):
    import httpx

    from vigil.services import forget_contexts

    app = make_app(tmp_path_factory.mktemp("browser") / "home")
    server = LiveServer(app)
    server.start()
    with httpx.Client(base_url=server.url, timeout=60, headers={"Origin": server.url.rstrip("/")}) as c:
        add_users(c, app.state.vigil.first_run)
    yield server
    server.stop()
    forget_contexts()


@pytest.fixture(scope="module")
def browser(browser_tools):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Checker:
    """Runs axe-core on a page (no serious or critical violations allowed) and saves a screenshot."""

    def __init__(self, axe: Path):
        self.axe = axe
        self.source = "() => {\n" + axe.read_text(encoding="utf-8") + "\n}"
        self.results: dict[str, dict] = {}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name: str, doc: str | None = None, doc_top: str | None = None) -> None:
        # Let entrance animations finish first: a new alert card fades in from 40 % opacity,
        # and axe measuring colour contrast mid-fade reports a violation the settled page lacks.
        page.evaluate("""() => Promise.race([
            Promise.all(document.getAnimations().map(a => a.finished.catch(() => null))),
            new Promise(done => setTimeout(done, 5000))])""")
        # every image on the page loaded (a screenshot mid-load shows empty frames)
        page.wait_for_function("() => [...document.images].every(i => i.complete || i.loading === 'lazy')",
                               timeout=10_000)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        if doc and DOC_SHOTS is not None:
            save_doc_screenshot(page, DOC_SHOTS / f"{doc}.png", top=doc_top)
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            # Evaluated through the DevTools protocol, so the console's Content-Security-Policy
            # (which rightly refuses inline scripts, as page.add_script_tag would add) stays on.
            page.evaluate(self.source)
        result = page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return {version: axe.version, passes: r.passes.length, incomplete: r.incomplete.length,
                    violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                        nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))};
        }""")
        self.results[name] = result
        assert result["passes"] > 10, f"axe did not run its rules on {name}: {result}"
        bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, f"accessibility violations on {name}:\n" + json.dumps(bad, indent=1)

    def write_summary(self) -> Path:
        path = SCREENSHOTS.parent / "axe-summary.json"
        path.write_text(json.dumps(self.results, indent=1))
        return path


def save_doc_screenshot(page, target: Path, top: str | None = None) -> None:
    """The visible 1280x800 viewport (scrolled so that the element ``top`` selects is at its top,
    when given) as a 256-colour PNG: a third of the size of a full-colour one; the console's flat
    colours survive (octree keeps small areas of colour, such as the green "live" dot, that a
    median cut merges away), photographs are dithered."""
    import io

    from PIL import Image

    assert page.viewport_size == VIEWPORT, f"documentation screenshots are taken at {VIEWPORT}"
    scrolled = page.evaluate("() => [window.scrollX, window.scrollY]")
    if top:
        page.locator(top).first.evaluate("el => el.scrollIntoView({block: 'start'})")
    shot = Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("RGB")
    page.evaluate("([x, y]) => window.scrollTo(x, y)", scrolled)
    target.parent.mkdir(parents=True, exist_ok=True)
    shot.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG).save(
        target, format="PNG", optimize=True)


@pytest.fixture(scope="module")
def check_page(browser_tools):
    """check_page(page, name, doc=None): axe-core check plus a screenshot (and, with
    VIGIL_SCREENSHOTS set, the documentation's screenshot ``doc``); a summary of every page's
    results is written to test-artifacts/axe-summary.json."""
    checker = Checker(browser_tools["axe"])
    yield checker
    checker.write_summary()
