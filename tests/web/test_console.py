"""The operator console: page routes (TestClient, no browser) and the end-to-end flow in
Chromium (Playwright), with an axe-core accessibility check and a screenshot of every page."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from tests.security.cameras_helper import register_sources
from tests.web.conftest import PASSWORDS, VIEWPORT, login, login_as

PAGES = ["/", "/alerts", "/deployments", "/deployments/1", "/watchlists", "/watchlists/x", "/galleries",
         "/galleries/y", "/search", "/audit", "/reports"]
NAV_LABELS = {"Live alerts": "/alerts", "Deployments": "/deployments", "Watchlists": "/watchlists",
              "Galleries": "/galleries", "Retrospective search": "/search", "Audit trail": "/audit",
              "Reports": "/reports"}
EXPECTED_NAV = {
    "admin": set(NAV_LABELS),
    "supervisor": {"Live alerts", "Deployments", "Watchlists", "Galleries", "Audit trail", "Reports"},
    "operator": {"Live alerts", "Deployments", "Watchlists", "Galleries"},
    "investigator": {"Watchlists", "Galleries", "Retrospective search"},
    "auditor": {"Deployments", "Audit trail", "Reports"},
}
WEB = Path(__file__).resolve().parents[2] / "src" / "vigil" / "web"


def nav_links(html: str) -> set[str]:
    nav = re.search(r'<nav class="site-nav" aria-label="Main">(.*?)</nav>', html, re.S)
    assert nav, "no main navigation"
    labels = set(re.findall(r">([^<>]+)</a>", nav.group(1)))
    return labels - {"Home"}


# -- page routes, no browser ---------------------------------------------------------------
def test_login_page_renders(client):
    r = client.get("/login")
    assert r.status_code == 200
    html = r.text
    assert '<html lang="en">' in html
    assert "<title>Log in – Vigil</title>" in html
    assert '<label for="username">' in html and '<label for="password">' in html
    assert 'id="errors"' in html and 'role="alert"' in html
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert "site-nav" not in html  # no navigation before logging in


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_login_without_session(client, path):
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")
    assert client.get(r.headers["location"]).status_code == 200


def test_invalid_session_cookie_redirects(client):
    client.cookies.set("vigil_session", "not-a-token")
    r = client.get("/alerts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Falerts"


def test_login_next_is_kept_and_only_local(client):
    assert 'data-next="/audit?action=alert."' in client.get("/login", params={"next": "/audit?action=alert."}).text
    for bad in ("//evil.example/x", "https://evil.example/", "/\\evil", "/api/token"):
        assert 'data-next="/"' in client.get("/login", params={"next": bad}).text


def test_login_page_redirects_when_logged_in(client, console_app):
    login_as(client, console_app, "operator")
    r = client.get("/login", params={"next": "/alerts"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/alerts"


def test_logout_clears_the_session(client, console_app):
    login_as(client, console_app, "operator")
    assert client.get("/alerts", follow_redirects=False).status_code == 200
    r = client.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert 'vigil_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    client.cookies.clear()
    assert client.get("/alerts", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("role", sorted(EXPECTED_NAV))
def test_navigation_shows_only_what_the_role_may_do(client, console_app, role):
    login_as(client, console_app, role)
    html = client.get("/").text
    assert nav_links(html) == EXPECTED_NAV[role]
    assert f"({role})" in html
    for label, path in NAV_LABELS.items():
        status = client.get(path, follow_redirects=False).status_code
        assert status == (200 if label in EXPECTED_NAV[role] else 403), (role, path, status)


def test_forbidden_page_explains(client, console_app):
    login_as(client, console_app, "auditor")
    r = client.get("/alerts")
    assert r.status_code == 403
    assert "alert.view" in r.text and "Not allowed" in r.text
    assert '<main id="main"' in r.text


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_layout_landmarks(client, console_app, path):
    login_as(client, console_app, "admin")
    r = client.get(path)
    assert r.status_code == 200
    html = r.text
    assert '<html lang="en">' in html
    assert re.search(r"<title>[^<]+ – Vigil</title>", html)
    for needle in ('<header class="site-header">', '<nav class="site-nav" aria-label="Main">', '<main id="main"',
                   "<h1>", "<footer", 'class="skip-link" href="#main"', 'role="status"', 'role="alert"'):
        assert needle in html, (path, needle)
    assert html.count('aria-current="page"') == 1
    # every visible form control in the shell has a label
    for control_id in re.findall(r'<(?:input|select|textarea)[^>]*\sid="([^"]+)"', html):
        assert f'for="{control_id}"' in html, (path, control_id)
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert all(s.startswith("/static/") for s in scripts)
    assert "<script>" not in html and " onclick=" not in html and " style=" not in html


def test_buttons_follow_permissions(client, console_app):
    login_as(client, console_app, "operator")
    page = client.get("/watchlists/x").text
    assert 'id="enrol-form"' not in page and 'id="authorise-form"' not in page and 'id="delete-form"' not in page
    assert 'id="create-form"' not in client.get("/watchlists").text
    assert 'id="create-form"' in client.get("/deployments").text
    assert 'id="dep-trial"' not in client.get("/deployments").text
    client.cookies.clear()

    login_as(client, console_app, "investigator")
    page = client.get("/watchlists/x").text
    assert 'id="enrol-form"' in page and 'id="delete-form"' in page and 'id="authorise-form"' not in page
    assert 'id="enrol-form"' in client.get("/galleries/y").text
    client.cookies.clear()

    login_as(client, console_app, "supervisor")
    page = client.get("/watchlists/x").text
    assert 'id="authorise-form"' in page and 'id="expire-form"' in page
    assert 'id="enrol-form"' not in client.get("/galleries/y").text  # galleries are the investigators'
    assert 'id="dep-trial"' in client.get("/deployments").text
    client.cookies.clear()

    login_as(client, console_app, "auditor")
    assert 'id="create-form"' not in client.get("/deployments").text
    assert "/api/reports/deployments/3?format=csv" in client.get("/deployments/3").text


def test_static_assets_are_local(client):
    for name in ("app.css", "common.js", "alerts.js", "logo.svg"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
    assert "javascript" in client.get("/static/alerts.js").headers["content-type"]
    remote = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//"""
                        r"""|url\(\s*["']?(?:https?:)?//|from\s+["'](?:https?:)?//""")
    for path in list((WEB / "templates").glob("*.html")) + list((WEB / "static").glob("*")):
        assert not remote.search(path.read_text()), f"{path.name} loads something from another site"


def test_api_errors_are_json_with_detail(client, console_app):
    """The console shows ``detail`` from API errors; check the shape it relies on."""
    login_as(client, console_app, "operator")
    r = client.post("/api/watchlists/x/authorise", json={"note": ""})
    assert r.status_code == 403 and isinstance(r.json()["detail"], str)
    r = client.post("/api/token", data={"username": "operator", "password": "wrong-password"})
    assert r.status_code == 401 and r.json()["detail"]
    login(client, "auditor", PASSWORDS["auditor"])
    assert client.get("/api/me").json()["role"] == "auditor"


# -- the browser flow ----------------------------------------------------------------------
def make_demo_video(path: Path, engine) -> Path:
    """4 s at 10 fps, 640x480: a different photo of the enrolled person (face ~100 px wide)
    pasted on a plain background, moving slightly each frame."""
    import cv2
    import numpy as np

    data = (resources.files("vigil") / "demo_data" / "obama_speech.jpg").read_bytes()
    photo = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    x, y, w, h = engine.primary(photo, name="obama_speech.jpg").face.box_list()[:4]
    scale = 100.0 / w
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cx, cy = int((x + w / 2) * scale), int((y + h / 2) * scale)
    x0, y0 = max(0, cx - 130), max(0, cy - 130)
    patch = small[y0:y0 + 300, x0:x0 + 260]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for i in range(40):
        frame = np.full((480, 640, 3), (190, 200, 205), np.uint8)
        ox, oy = 160 + 2 * i, 60 + i
        frame[oy:oy + patch.shape[0], ox:ox + patch.shape[1]] = patch
        writer.write(frame)
    writer.release()
    assert path.stat().st_size > 1000
    return path


def demo_file(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    target.write_bytes((resources.files("vigil") / "demo_data" / name).read_bytes())
    return target


def new_page(browser, server, problems: list):
    context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text else None)
    return context, page


def browser_login(page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/$"))


@pytest.mark.browser
@pytest.mark.slow
def test_console_end_to_end(browser, live_server, check_page, tmp_path):
    from playwright.sync_api import expect

    server = live_server
    first = server.app.state.vigil.first_run
    video = make_demo_video(tmp_path / "camera-1.mp4", server.app.state.vigil.engine(None))
    register_sources(server.app.state.vigil, [{"camera": "camera-1", "source": str(video)}])  # by an administrator
    problems: list[str] = []
    context, page = new_page(browser, server, problems)

    # Log in (a wrong password first: the error is shown in the alert region).
    page.goto("/")
    page.wait_for_url(re.compile(r".*/login\?next=%2F$"))
    check_page(page, "01-login", doc="login")
    page.get_by_label("Username").fill(first["admin"])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#errors")).to_contain_text("Log in failed")
    page.get_by_label("Password").fill(first["password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/$"))
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Audit trail")
    check_page(page, "02-home")
    page.keyboard.press("Tab")  # keyboard users reach the skip link first
    assert page.evaluate("document.activeElement.className") == "skip-link"

    # Create a watchlist.
    page.get_by_role("link", name="Watchlists").first.click()
    expect(page.locator("#collections-table")).to_contain_text("No watchlists yet")
    page.get_by_label("Name").fill("Demo watchlist")
    page.get_by_label("Purpose").fill("Locate wanted offenders at the demo event")
    page.get_by_label("Legal basis").fill("Common law policing powers; DPA 2018 s.35")
    page.get_by_label("Category").select_option("wanted")
    check_page(page, "03-watchlists")
    page.get_by_role("button", name="Create watchlist").click()
    page.wait_for_url(re.compile(r".*/watchlists/Demo%20watchlist$"))
    expect(page.locator("#summary")).to_contain_text("not authorised")

    # Enrol, with the quality feedback shown before saving.
    page.get_by_label("Photograph").set_input_files(str(demo_file("obama.jpg", tmp_path)))
    expect(page.locator("#quality-verdict")).to_contain_text("Good enough to enrol")
    expect(page.locator("#quality")).to_contain_text("Quality score")
    page.get_by_label("Subject name").fill("Barack Obama")
    page.get_by_label("Reference (e.g. custody or case number)").fill("DEMO-1")
    check_page(page, "04-enrol-quality-check")
    page.get_by_role("button", name="Enrol", exact=True).click()
    expect(page.locator("#subjects-table")).to_contain_text("Barack Obama")
    expect(page.locator("#quality")).to_contain_text("enrolled")

    # Authorise it (the first user is an admin, who may).
    page.get_by_label("Authorisation note").fill("Necessary and proportionate for the demo event")
    page.get_by_role("button", name="Authorise watchlist").click()
    expect(page.locator("#summary")).to_contain_text(f"by {first['admin']}")
    check_page(page, "05-watchlist", doc="watchlist", doc_top="body")
    page.get_by_role("link", name="Watchlists").first.click()
    expect(page.locator("#collections-table")).to_contain_text("Demo watchlist")
    expect(page.locator("#collections-table")).to_contain_text("authorised")
    check_page(page, "05b-watchlists-list", doc="watchlists")

    # Create the demo deployment with the video as its camera, and authorise it.
    page.get_by_role("link", name="Deployments").first.click()
    expect(page.locator("#deployments-table")).to_contain_text("No deployments yet")
    page.get_by_label("Name", exact=True).fill("Demo deployment")
    page.get_by_label("Location").fill("Demo square")
    page.get_by_label("Legal basis").fill("Common law policing powers")
    page.get_by_label("Purpose").fill("Demonstration")
    page.get_by_label("Demo watchlist").check()
    page.get_by_label("Camera 1 source").fill(str(video))
    page.get_by_label("Accepted false alert rate per face").fill("0.001")
    check_page(page, "06-deployments")
    page.get_by_role("button", name="Create deployment").click()
    page.wait_for_url(re.compile(r".*/deployments/\d+$"))
    dep_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#status-badge")).to_contain_text("draft")
    page.get_by_label("Authorisation note").fill("Authorised for the demo")
    page.get_by_role("button", name="Authorise deployment").click()
    expect(page.get_by_role("button", name="Start deployment")).to_be_visible()
    check_page(page, "07-deployment-authorised")

    # The operator's screen: the live alert queue, open before the deployment starts.
    alerts = context.new_page()
    alerts.set_default_timeout(20_000)
    alerts.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    alerts.goto("/alerts")
    expect(alerts.locator("#connection")).to_have_attribute("data-state", "live")
    expect(alerts.locator("#queue-empty")).to_be_visible()
    alerts.evaluate("window.__notReloaded = true")
    check_page(alerts, "08-alerts-waiting")

    # Start it at real time; the running status shows the camera.
    page.get_by_role("button", name="Start deployment").click()
    expect(page.locator("#cameras-table")).to_contain_text("camera-1")
    check_page(page, "09-deployment-running")

    # The alert arrives without reloading (Server-Sent Events).
    card = alerts.locator(".alert-card").first
    expect(card).to_contain_text("Barack Obama", timeout=30_000)
    assert alerts.evaluate("window.__notReloaded === true"), "the alerts page was reloaded"
    expect(alerts.locator("#alert-announcer")).to_contain_text("New alert")
    expect(card.get_by_role("img", name="Face seen by camera camera-1")).to_be_visible()
    expect(card.get_by_role("img", name="Watchlist image of Barack Obama")).to_be_visible()
    expect(alerts.locator(".human-decides")).to_contain_text("not an identification")
    check_page(alerts, "10-alert-arrived")

    # Adjudicate with the keyboard only: j to the alert, o for the outcome (engaged), n for the
    # notes, Escape back to the card, c for confirmed, Enter to record it.
    alerts.keyboard.press("j")
    expect(card.locator("h3")).to_be_focused()
    alerts.keyboard.press("o")
    expect(card.get_by_label("Outcome")).to_be_focused()
    alerts.keyboard.press("ArrowDown")  # no action -> engaged
    alerts.keyboard.press("Escape")
    alerts.keyboard.press("n")
    alerts.keyboard.type("Compared at the scene; spoke to the person.")
    alerts.keyboard.press("Escape")
    alerts.keyboard.press("c")
    expect(card.get_by_role("button", name="Record decision")).to_be_focused()
    expect(card.get_by_label("Confirmed: the same person")).to_be_checked()
    alerts.keyboard.press("Enter")
    expect(card.locator(".decision-summary")).to_contain_text("confirmed")
    expect(card.locator(".decision-summary")).to_contain_text("engaged")
    check_page(alerts, "11-alert-decided")

    # The deployment ends with the video; its record counts the confirmed alert.
    expect(page.locator("#status-badge")).to_contain_text("ended", timeout=30_000)
    page.reload()  # the record on screen was read when the run ended, which may precede the decision
    expect(page.locator("#record")).to_contain_text("Confirmed alerts")
    record = page.locator("#record dl").inner_text()
    assert re.search(r"Confirmed alerts\s+1", record), record
    check_page(page, "12-deployment-ended")
    page.get_by_role("link", name="Deployments").first.click()
    expect(page.locator("#deployments-table")).to_contain_text("Demo deployment")
    expect(page.locator("#deployments-table")).to_contain_text("ended")
    check_page(page, "12b-deployments-list", doc="deployments")

    # Retrospective search against the watchlist: candidates as a grid, with the warning.
    page.get_by_role("link", name="Retrospective search").click()
    page.get_by_label("Probe image or video").set_input_files(str(demo_file("obama_speech.jpg", tmp_path)))
    page.get_by_label("Search in").select_option("watchlist:Demo watchlist")
    page.get_by_label("Case reference").fill("CASE-2024-001")
    page.get_by_label("Reason for this search").fill("Identify the person in the footage for the demo case")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".candidate").first).to_contain_text("Barack Obama")
    expect(page.locator("#results-section")).to_contain_text("leads for review, not identifications")
    check_page(page, "13-search-results", doc="search", doc_top="#results-section")

    # Enrolling into the authorised watchlist withdraws its authorisation, and the page says so.
    page.goto("/watchlists/Demo%20watchlist")
    expect(page.locator("#summary")).to_contain_text(f"by {first['admin']}")
    page.get_by_label("Photograph").set_input_files(str(demo_file("biden.jpg", tmp_path)))
    expect(page.locator("#quality-verdict")).to_contain_text("Good enough to enrol")
    page.get_by_label("Subject name").fill("Joe Biden")
    page.get_by_role("button", name="Enrol", exact=True).click()
    expect(page.locator("#quality")).to_contain_text("Authorisation withdrawn from watchlist Demo watchlist")
    expect(page.locator("#summary")).to_contain_text("not authorised")

    # Galleries page (empty) and the transparency report with its charts.
    page.get_by_role("link", name="Galleries").click()
    expect(page.locator("#collections-table")).to_contain_text("No galleries yet")
    check_page(page, "14-galleries")
    page.get_by_role("link", name="Reports").click()
    expect(page.locator("#charts img")).to_have_count(1)
    expect(page.locator("#deployments")).to_contain_text("Demo deployment")
    check_page(page, "15-reports", doc="reports")
    context.close()

    # The auditor finds the decision in the audit view; the chain verifies.
    context, page = new_page(browser, server, problems)
    browser_login(page, "auditor", PASSWORDS["auditor"])
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_contain_text("Audit trail")
    expect(nav).not_to_contain_text("Live alerts")
    expect(nav).not_to_contain_text("Watchlists")
    check_page(page, "16-home-auditor")
    nav.get_by_role("link", name="Audit trail").click()
    expect(page.locator("#verify-result")).to_contain_text("Chain intact")
    page.get_by_label("Action starts with").fill("alert.decided")
    page.get_by_role("button", name="Apply filters").click()
    row = page.locator("#audit-table tbody tr[data-action='alert.decided']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("decision: confirmed")
    expect(row).to_contain_text("outcome: engaged")
    expect(row).to_contain_text(first["admin"])
    expect(page.locator("#older")).to_be_hidden()
    check_page(page, "17-audit")
    page.goto(f"/deployments/{dep_id}")
    expect(page.locator("#status-badge")).to_contain_text("ended")
    expect(page.locator("#actions")).to_contain_text("No actions for your role")
    check_page(page, "18-deployment-auditor")
    context.close()

    assert not problems, problems


def small_copy(name: str, tmp_path: Path, factor: float) -> Path:
    """A shrunken copy of a demo photo: its face is then too small to enrol."""
    import cv2
    import numpy as np

    data = (resources.files("vigil") / "demo_data" / name).read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    target = tmp_path / f"small-{name}"
    cv2.imwrite(str(target), small)
    return target


@pytest.mark.browser
def test_collections_managed_in_browser(browser, live_server, check_page, tmp_path):
    """An investigator: a gallery with a refused photo (quality shown, Enrol stays off), an
    enrolment, deletion with a reason; a watchlist expired."""
    from playwright.sync_api import expect

    problems: list[str] = []
    context, page = new_page(browser, live_server, problems)
    page.on("dialog", lambda dialog: dialog.accept())
    browser_login(page, "investigator", PASSWORDS["investigator"])
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_contain_text("Retrospective search")
    expect(nav).not_to_contain_text("Live alerts")
    expect(nav).not_to_contain_text("Audit trail")

    nav.get_by_role("link", name="Galleries").click()
    page.get_by_label("Name").fill("Custody images")
    page.get_by_label("Purpose").fill("Reference images for retrospective search")
    page.get_by_role("button", name="Create gallery").click()
    page.wait_for_url(re.compile(r".*/galleries/Custody%20images$"))

    page.get_by_label("Photograph").set_input_files(str(small_copy("obama.jpg", tmp_path, 0.2)))
    expect(page.locator("#quality")).to_contain_text("Not good enough to enrol")
    expect(page.locator("#quality .reasons li").first).to_be_visible()
    expect(page.get_by_role("button", name="Enrol", exact=True)).to_be_disabled()
    check_page(page, "19-enrol-refused")

    page.get_by_label("Photograph").set_input_files(str(demo_file("biden.jpg", tmp_path)))
    expect(page.locator("#quality-verdict")).to_contain_text("Good enough to enrol")
    page.get_by_label("Subject name").fill("Joe Biden")
    page.get_by_role("button", name="Enrol", exact=True).click()
    expect(page.locator("#subjects-table")).to_contain_text("Joe Biden")
    expect(page.get_by_role("img", name="Enrolled face of Joe Biden")).to_be_visible()
    check_page(page, "20-gallery")

    page.get_by_role("button", name="Delete gallery").click()  # no reason yet: refused in the page
    expect(page.locator("#errors")).to_contain_text("give a reason for deleting")
    page.get_by_label("Reason for deleting").fill("Test gallery no longer needed")
    page.get_by_role("button", name="Delete gallery").click()
    # deleting it would erase Joe Biden (enrolled only here): that is subject.delete, not an investigator's
    expect(page.locator("#errors")).to_contain_text("may not subject delete")
    nav.get_by_role("link", name="Galleries").click()
    expect(page.locator("#collections-table")).to_contain_text("Custody images")

    nav.get_by_role("link", name="Watchlists").click()
    page.get_by_label("Name").fill("Short-lived list")
    page.get_by_label("Purpose").fill("A watchlist to expire")
    page.get_by_role("button", name="Create watchlist").click()
    page.wait_for_url(re.compile(r".*/watchlists/Short-lived%20list$"))
    page.get_by_role("button", name="Expire now").click()
    expect(page.locator("#status-badge")).to_contain_text("expired")
    expect(page.locator("#status")).to_contain_text("expired")
    context.close()
    assert not problems, problems


@pytest.mark.browser
def test_supervisor_reviews_what_a_plan_authorises_and_rejects_it(browser, live_server, check_page, tmp_path):
    """Issue #15: the supervisor finds the plan waiting on Home, sees the watchlist with its
    size, the threshold and the expected misses, and rejects it with a reason."""
    from playwright.sync_api import expect

    from tests.conftest import demo_bytes
    from vigil.governance.permissions import Actor
    from vigil.retro.manifests import EnrolItem
    from vigil.services.collections import authorise_watchlist, create_collection
    from vigil.services.deployments import create_deployment
    from vigil.services.enrolment import enrol_image

    vigil = live_server.app.state.vigil
    admin = vigil.cli_actor()
    create_collection(vigil, admin, "watchlist", "Review list", purpose="wanted for robbery", category="wanted")
    enrol_image(vigil, admin, "watchlist", "Review list", demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    authorise_watchlist(vigil, admin, "Review list")
    video = make_demo_video(tmp_path / "review-camera.mp4", vigil.engine(None))
    register_sources(vigil, [{"camera": "review-camera", "source": str(video)}])
    plan = create_deployment(vigil, Actor("operator", "operator"), name="Station forecourt", location="Station Rd",
                             sources=[{"camera": "review-camera"}], watchlists=["Review list"], window_start=None,
                             window_end=None, legal_basis="common law; DPA 2018 s.35")

    problems: list[str] = []
    context, page = new_page(browser, live_server, problems)
    browser_login(page, "supervisor", PASSWORDS["supervisor"])
    waiting = page.locator("#waiting")
    expect(waiting).to_contain_text("Station forecourt")
    check_page(page, "23-home-waiting-for-authorisation", doc="home")
    waiting.get_by_role("link", name="Station forecourt").click()
    page.wait_for_url(re.compile(rf".*/deployments/{plan['id']}$"))
    expect(page.locator("#review-watchlists")).to_contain_text("Review list")
    expect(page.locator("#review-watchlists")).to_contain_text("1 person in all")
    expect(page.locator("#review-thresholds")).to_contain_text("every category")
    expect(page.locator("#review-photos")).to_contain_text(
        "one entry averaging up to 3 of their photos: 1 from 1 photo")
    check_page(page, "24-deployment-review", doc="deployment-review", doc_top="#review-heading")
    page.get_by_label("Reason for rejecting (the planner reads it)").fill("No intelligence case for this site")
    page.get_by_role("button", name="Reject deployment").click()
    expect(page.locator("#status-badge")).to_contain_text("cancelled")
    page.goto("/")
    expect(page.locator("#waiting")).to_have_count(0)
    context.close()
    assert problems == []


@pytest.mark.browser
def test_auditor_filters_the_trail_by_date_exports_it_and_lists_searches(browser, live_server, check_page,
                                                                          tmp_path):
    """Issue #15: the audit page had no date filter or export, and no view of search records."""
    from datetime import UTC, datetime

    from playwright.sync_api import expect

    from tests.conftest import demo_bytes
    from vigil.governance.permissions import Actor
    from vigil.retro.manifests import EnrolItem
    from vigil.services.collections import create_collection
    from vigil.services.enrolment import enrol_image
    from vigil.services.search import run_search

    vigil = live_server.app.state.vigil
    admin = vigil.cli_actor()
    create_collection(vigil, admin, "gallery", "Audit custody", purpose="custody images")
    enrol_image(vigil, admin, "gallery", "Audit custody", demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    run_search(vigil, Actor("investigator", "investigator"), "gallery", "Audit custody", case_ref="CASE-AUD-1",
               reason="theft from the depot", data=demo_bytes("obama_speech.jpg"))

    problems: list[str] = []
    context, page = new_page(browser, live_server, problems)
    browser_login(page, "auditor", PASSWORDS["auditor"])
    page.goto("/audit")
    today = datetime.now(UTC).date().isoformat()
    page.get_by_label("From (date)").fill(today)
    page.get_by_label("To (date, inclusive)").fill(today)
    page.get_by_label("Action starts with").fill("gallery.")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#audit-table tbody")).to_contain_text("gallery.created")
    expect(page.locator("#searches-table")).to_contain_text("CASE-AUD-1")
    expect(page.locator("#searches-table")).to_contain_text("theft from the depot")
    check_page(page, "25-audit-filtered-with-searches", doc="audit")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    text = (tmp_path / "audit.csv")
    download.value.save_as(text)
    lines = text.read_text().splitlines()
    assert lines[0].startswith("seq,ts,actor,action") and all("gallery." in line for line in lines[1:]) and lines[1:]
    page.get_by_label("From (date)").fill("2001-01-01")
    page.get_by_label("To (date, inclusive)").fill("2001-01-31")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#audit-table tbody")).to_contain_text("No entries match")
    expect(page.locator("#searches-table")).to_contain_text("No searches in this period")
    context.close()
    assert problems == []


@pytest.mark.browser
def test_operator_compares_faces_on_the_alert_card_and_filters_the_history(browser, live_server, check_page):
    """Issue #15: the card shows the two faces aligned side by side at the same size, enlarged on a
    click or with the keyboard (a dialog Escape closes, focus going back), the full frame with
    bystanders washed out, the score against the threshold in words, the look-alike runner-up,
    and the subject's category, reference and watchlist expiry; a link to the subject's other
    alerts; the page filters by deployment and by subject."""
    from playwright.sync_api import expect

    from tests.web.seed import seed_alert_history

    vigil = live_server.app.state.vigil
    seeded = seed_alert_history(vigil, vigil.engine(None))
    biden, ids = seeded["people"]["biden"], seeded["alerts"]

    problems: list[str] = []
    context, page = new_page(browser, live_server, problems)
    browser_login(page, "operator", PASSWORDS["operator"])
    page.goto("/alerts")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    card = page.locator(f"#alert-{ids['biden']}")
    expect(card).to_contain_text("possible match with Joe Biden")
    expect(page.locator(f"#alert-{ids['earlier']}")).to_have_count(0)  # decided: not in the queue
    cards = page.locator("#alert-list > li")
    expect(cards.first).to_have_attribute("id", f"alert-{ids['biden']}")  # newest first

    # the two faces: aligned crops, loaded, shown at the same size side by side
    probe = card.get_by_role("img", name="Face seen by camera gate")
    listed = card.get_by_role("img", name="Watchlist image of Joe Biden")
    for img in (probe, listed):
        expect(img).to_be_visible()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
        assert img.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [448, 448]
    box_probe, box_listed = probe.bounding_box(), listed.bounding_box()
    assert (box_probe["width"], box_probe["height"]) == (box_listed["width"], box_listed["height"]) == (224, 224)
    assert abs(box_probe["y"] - box_listed["y"]) < 1 and box_listed["x"] > box_probe["x"] + 200
    assert "probe_face.jpg" in probe.get_attribute("src") and "watchlist_face.jpg" in listed.get_attribute("src")

    # the facts in words
    expect(card.locator(".score-words")).to_have_text("0.712, well above the threshold 0.600 (+0.112)")
    expect(page.locator(f"#alert-{ids['obama']} .score-words")).to_contain_text("just above the threshold 0.600")
    expect(card.locator(".runner-up")).to_contain_text("Barack Obama: 0.571, just below their threshold 0.600")
    expect(card.locator(".warning")).to_contain_text("compare the face with both before deciding")
    expect(card.locator(".reference")).to_have_text("WARRANT-2207")
    expect(card.locator(".watchlist")).to_contain_text("Wanted on warrant")
    expect(card.locator(".watchlist time")).to_have_attribute("datetime", re.compile(r"^2099-12-31T23:59:59"))
    expect(card).to_contain_text("wanted")
    check_page(page, "26-alert-card", doc="alerts", doc_top="#queue-heading")

    # keyboard: j to the newest alert, e enlarges both faces in a dialog; Escape closes it and
    # focus is back on the alert
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    expect(card.locator("h3")).to_be_focused()
    page.keyboard.press("e")
    dialog = page.locator("#image-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_contain_text("compare Joe Biden at full size")
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    large = dialog.get_by_role("img", name="Face seen by camera gate, enlarged")
    expect(large).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=large.element_handle())
    assert large.bounding_box()["width"] == 448
    page.keyboard.press("c")  # the triage keys are the card's, not the dialog's: nothing chosen
    check_page(page, "27-alert-enlarged", doc="alerts-enlarged")
    # the images as stored, behind the aligned ones: the whole enrolled photograph
    dialog.get_by_role("button", name="Show the images as stored").click()
    expect(dialog.get_by_role("img", name="Watchlist image of Joe Biden, enlarged")).to_have_attribute(
        "src", re.compile(r"/watchlist\.jpg$"))
    expect(dialog).to_contain_text("the photograph as enrolled")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(card.locator("h3")).to_be_focused()
    expect(card.get_by_label("Confirmed: the same person")).not_to_be_checked()

    # Tab reaches the probe face; Enter enlarges it; Escape returns to it
    page.keyboard.press("Tab")
    enlarge = card.get_by_role("button", name=re.compile("Face seen by camera gate"))
    expect(enlarge).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(enlarge).to_be_focused()

    # the full frame: everyone but the alerted face washed out, enlarged on a click
    card.get_by_text("Show the full camera frame").click()
    frame_button = card.get_by_role("button", name=re.compile("Full camera frame"))
    expect(frame_button).to_be_visible()
    frame_button.click()
    expect(dialog.get_by_role("img", name=re.compile("Full camera frame.*enlarged"))).to_be_visible()
    expect(dialog).to_contain_text("Everyone but the alerted face is washed out")
    dialog.get_by_role("button", name="Close").click()
    expect(frame_button).to_be_focused()

    # the subject's other alerts: both deployments, decided ones too
    card.get_by_role("link", name="Other alerts for Joe Biden").click()
    page.wait_for_url(re.compile(rf".*/alerts\?subject_id={biden['id']}&decided=1$"))
    expect(page.locator("#queue-title")).to_have_text(f"Alerts for Joe Biden ({biden['id']})")
    expect(cards).to_have_count(2)
    expect(page.locator(f"#alert-{ids['earlier']}")).to_contain_text("false alert")
    expect(page.locator(f"#alert-{ids['obama']}")).to_have_count(0)
    expect(page.get_by_label("Subject id")).to_have_value(biden["id"])
    check_page(page, "28-alerts-subject-history", doc="alerts-subject-history")

    # by deployment: High Street holds only the earlier (decided) alert
    page.get_by_label("Deployment").select_option(str(seeded["deployments"]["high_street"]))
    expect(page.get_by_label("Deployment").locator("option:checked")).to_contain_text("High Street")
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("id", f"alert-{ids['earlier']}")
    assert f"deployment_id={seeded['deployments']['high_street']}" in page.url
    page.get_by_label("Also show decided alerts").uncheck()
    expect(cards).to_have_count(0)
    expect(page.locator("#queue-empty")).to_contain_text("No alerts match these filters")
    page.get_by_label("Subject id").fill("")
    page.get_by_label("Deployment").select_option("")
    expect(cards).to_have_count(2)  # the two undecided alerts, every subject
    context.close()
    assert problems == []


@pytest.mark.browser
def test_lists_show_a_page_at_a_time_and_subjects_are_searched(browser, live_server, check_page):
    """Issue #15: each list shows its first page and a "Show more" button while the API gives a
    next_cursor; a watchlist's subjects are searched by name or reference (q)."""
    from playwright.sync_api import expect

    from tests.conftest import demo_bytes
    from vigil.retro.manifests import EnrolItem
    from vigil.services.collections import create_collection, list_collections
    from vigil.services.enrolment import enrol_image

    vigil = live_server.app.state.vigil
    admin = vigil.cli_actor()
    for i in range(101):
        create_collection(vigil, admin, "watchlist", f"Paged list {i:03d}", purpose="paging test")
    total = len(list_collections(vigil, admin, "watchlist", limit=1000).items)
    create_collection(vigil, admin, "watchlist", "Searchable list", purpose="search test", category="wanted")
    for photo, name, reference in (("obama.jpg", "Barack Obama", "WARRANT-0451"),
                                   ("biden.jpg", "Joe Biden", "WARRANT-2207")):
        out = enrol_image(vigil, admin, "watchlist", "Searchable list", demo_bytes(photo),
                          EnrolItem(photo, name, reference=reference))
        assert out["status"] == "enrolled", out

    problems: list[str] = []
    context, page = new_page(browser, live_server, problems)
    browser_login(page, "supervisor", PASSWORDS["supervisor"])
    page.goto("/watchlists")
    rows = page.locator("#collections-table tbody tr")
    expect(rows).to_have_count(100)
    more = page.get_by_role("button", name="Show more watchlists")
    expect(more).to_be_visible()
    more.focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(total + 1)  # every watchlist, the searchable one too
    expect(more).to_be_hidden()
    expect(page.locator("#collections-table")).to_be_focused()  # not dropped at the top of the page
    expect(page.locator("#status")).to_contain_text("that is all")

    page.goto("/watchlists/Searchable%20list")
    subjects = page.locator("#subjects-table tbody tr")
    expect(subjects).to_have_count(2)
    expect(page.get_by_role("button", name="Show more subjects")).to_be_hidden()
    page.get_by_label("Name or reference contains").fill("2207")
    page.get_by_role("button", name="Search subjects").click()
    expect(subjects).to_have_count(1)
    expect(subjects.first).to_contain_text("Joe Biden")
    expect(page.locator("#status")).to_contain_text("1 subject matches “2207”")
    check_page(page, "29-subjects-searched")
    page.get_by_label("Name or reference contains").fill("nobody of that name")
    page.keyboard.press("Enter")
    expect(page.locator("#subjects-table")).to_contain_text("No subjects match this search.")
    context.close()

    # the alerts page: 50 at a time, older ones on request (rows only: no images kept)
    from vigil.store.schema import Alert, Deployment

    with vigil.store.session() as s:
        dep = Deployment(name="Paging deployment", location="Anywhere", status="ended", sources=[],
                         watchlist_ids=[], snapshot_ids=[], category_rates={}, record={})
        s.add(dep)
        s.flush()
        for i in range(51):
            s.add(Alert(deployment_id=dep.id, camera="north", source_time=float(i), track_id=i, subject_id="S-PAGED",
                        subject_name="Paged Person", category="wanted", score=0.7, threshold=0.6, fmr=1e-6))
        dep_id = dep.id
    context, page = new_page(browser, live_server, problems)
    browser_login(page, "operator", PASSWORDS["operator"])
    page.goto(f"/alerts?deployment_id={dep_id}")
    cards = page.locator("#alert-list > li")
    expect(cards).to_have_count(50)
    expect(cards.first).to_contain_text("Images deleted by retention")
    older = page.get_by_role("button", name="Show older alerts")
    older.click()
    expect(cards).to_have_count(51)
    expect(older).to_be_hidden()
    expect(cards.last.locator("h3")).to_be_focused()
    context.close()
    assert problems == []


@pytest.mark.browser
def test_a_cluster_deployment_shows_where_each_camera_runs(browser, live_server, check_page, tmp_path):
    """Issue #14: the console shows what `vigil deployment status` shows: each camera's node,
    state, health, lag and dropped frames as the recorder last saw them, and why a camera no
    node runs is unplaced."""
    from playwright.sync_api import expect

    from tests.conftest import demo_bytes
    from vigil.retro.manifests import EnrolItem
    from vigil.services.collections import authorise_watchlist, create_collection
    from vigil.services.deployments import create_deployment
    from vigil.services.enrolment import enrol_image
    from vigil.store.schema import Deployment
    from vigil.timeutil import iso, utcnow

    vigil = live_server.app.state.vigil
    admin = vigil.cli_actor()
    create_collection(vigil, admin, "watchlist", "Fleet list", purpose="wanted", category="wanted")
    enrol_image(vigil, admin, "watchlist", "Fleet list", demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    authorise_watchlist(vigil, admin, "Fleet list")
    videos = [make_demo_video(tmp_path / f"fleet-{i}.mp4", vigil.engine(None)) for i in (1, 2)]
    register_sources(vigil, [{"camera": f"fleet-{i}", "source": str(v)} for i, v in zip((1, 2), videos)])
    plan = create_deployment(vigil, admin, name="Harbour fleet", location="Harbour", placement="any",
                             sources=[{"camera": "fleet-1"}, {"camera": "fleet-2"}], watchlists=["Fleet list"],
                             window_start=None, window_end=None, legal_basis="common law")
    with vigil.store.session() as s:  # what the recorder leaves while the deployment runs
        dep = s.get(Deployment, plan["id"])
        dep.status, dep.started_at = "running", utcnow()
        dep.camera_status = {"updated_at": iso(utcnow()), "nodes": [], "cameras": [
            {"camera": "fleet-1", "node": "node-a", "state": "running", "health": "ok", "lag_s": 0.4,
             "frames": 250, "dropped": 3, "heartbeat_at": iso(utcnow()), "reason": None},
            {"camera": "fleet-2", "node": None, "state": "unplaced", "health": None, "lag_s": None, "frames": None,
             "dropped": None, "heartbeat_at": None, "reason": "every node is at capacity (2 of 2 cameras)"}]}

    problems: list[str] = []
    context, page = new_page(browser, live_server, problems)
    browser_login(page, "supervisor", PASSWORDS["supervisor"])
    page.goto(f"/deployments/{plan['id']}")
    table = page.locator("#cluster-cameras-table")
    expect(table).to_contain_text("node-a")
    row = table.locator("tr", has_text="fleet-1")
    expect(row).to_contain_text("running")
    expect(row).to_contain_text("0.4")
    expect(table.locator("tr", has_text="fleet-2")).to_contain_text("every node is at capacity")
    expect(page.locator("#live")).to_contain_text("Placed on the cluster (any)")
    check_page(page, "27-deployment-cluster", doc="deployment-cluster", doc_top="#live-heading")
    context.close()
    assert problems == []
