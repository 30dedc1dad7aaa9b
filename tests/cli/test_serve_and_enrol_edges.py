"""Two edges of the command line, through the real CLI (``python -m vigil``):

- ``vigil serve`` on any address but loopback needs a certificate or a declared
  TLS-terminating proxy, and refuses with a clear message otherwise; with a certificate it
  serves HTTPS and the session cookie is ``Secure``;
- ``vigil enroll --dir`` skips and reports a folder whose name is not UTF-8 (it used to abort
  the whole run with a traceback)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.cli_run import run_cli
from tests.conftest import demo_bytes, need_service


def _run(args: list[str], home, timeout: int = 300) -> subprocess.CompletedProcess:
    """``vigil ARGS`` through its real entry point, in this process (tests/cli_run.py)."""
    return run_cli(home, *args, env={"COLUMNS": "100"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "vigil.example.org"])
def test_serve_on_a_network_address_without_tls_is_refused(host, home):
    started = time.monotonic()
    proc = _run(["serve", "--host", host, "--port", str(_free_port())], home, timeout=60)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "--tls-cert" in proc.stderr and "--behind-proxy" in proc.stderr and "plain HTTP" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "Vigil console" not in proc.stdout
    assert time.monotonic() - started < 30  # refused before anything was served


def test_serve_tls_options_are_checked(home, tmp_path):
    proc = _run(["serve", "--host", "0.0.0.0", "--tls-cert", str(tmp_path / "c.pem")], home, timeout=60)
    assert proc.returncode == 1 and "go together" in proc.stderr
    proc = _run(["serve", "--host", "0.0.0.0", "--tls-cert", str(tmp_path / "c.pem"), "--tls-key",
                 str(tmp_path / "k.pem")], home, timeout=60)
    assert proc.returncode == 1 and "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_behind_a_declared_proxy_marks_the_cookie_secure(home, monkeypatch):
    """The real command line (Typer), with uvicorn's run replaced by a recorder."""
    import uvicorn
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from vigil.cli import app as cli
    from vigil.services import forget_contexts
    from vigil.services.accounts import add_user

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--behind-proxy", "10.0.0.5",
                                      "--retention-every", "0"])
    assert result.exit_code == 0, result.output
    assert served["proxy_headers"] and served["forwarded_allow_ips"] == "10.0.0.5"
    app = served["app"]
    add_user(app.state.vigil, app.state.vigil.cli_actor(), "proxied", "auditor", password="proxied-password-1")
    r = TestClient(app).post("/api/token", data={"username": "proxied", "password": "proxied-password-1"})
    assert r.status_code == 200 and "; secure" in r.headers["set-cookie"].lower()
    forget_contexts()


def test_serve_with_a_certificate_serves_https_and_a_secure_cookie(home, tmp_path):
    import httpx

    need_service(shutil.which("openssl") is not None, "openssl is not installed (it makes the test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    created = _run(["user", "create", "tls-user", "--role", "auditor", "--json"], home)
    assert created.returncode == 0, created.stderr
    password = json.loads(created.stdout)["password"]
    port = _free_port()
    env = {**os.environ, "VIGIL_HOME": str(home)}
    server = subprocess.Popen([sys.executable, "-m", "vigil", "serve", "--host", "0.0.0.0", "--port", str(port),
                               "--tls-cert", str(cert), "--tls-key", str(key), "--retention-every", "0"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"https://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/api/health", verify=False, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the HTTPS server did not start")
        r = httpx.post(url + "/api/token", data={"username": "tls-user", "password": password}, verify=False)
        assert r.status_code == 200, r.text
        assert "; secure" in r.headers["set-cookie"].lower() and "httponly" in r.headers["set-cookie"].lower()
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on that port
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_enrol_dir_skips_and_reports_a_folder_name_that_is_not_utf8(home, tmp_path):
    people = tmp_path / "people"
    (people / "Barack_Obama").mkdir(parents=True)
    (people / "Barack_Obama" / "obama.jpg").write_bytes(demo_bytes("obama.jpg"))
    latin1 = os.path.join(os.fsencode(people), b"Jos\xe9_Garc\xeda")  # a name written in Latin-1
    os.mkdir(latin1)
    with open(os.path.join(latin1, b"biden.jpg"), "wb") as f:
        f.write(demo_bytes("biden.jpg"))
    assert _run(["gallery", "create", "custody"], home).returncode == 0
    proc = _run(["enroll", "--gallery", "custody", "--dir", str(people), "--json"], home)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["enrolled"] == 1
    [rejected] = report["rejected"]
    assert "Jos\\xe9_Garc\\xeda" in rejected["source"] and "not valid UTF-8" in rejected["reasons"][0]
    human = _run(["enroll", "--gallery", "custody", "--dir", str(people)], home)  # the text report prints it too
    assert human.returncode == 0 and "Traceback" not in human.stderr
    assert "skipped 1" in human.stdout and "not valid UTF-8" in human.stdout
    shown = json.loads(_run(["gallery", "show", "custody", "--json"], home).stdout)  # a fresh process
    assert shown["subjects"] == 1, shown
