"""`vigil demo` end to end on a fresh data directory (what the README's first command runs)."""

import json
import subprocess
import sys


def test_demo_no_serve_json(home):
    proc = subprocess.run([sys.executable, "-m", "vigil", "demo", "--no-serve", "--json"], capture_output=True,
                          text=True, env={"VIGIL_HOME": str(home), "PATH": "/usr/bin:/bin"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    verdicts = {(v["a"], v["b"]): v["match"] for v in data["engine"]["verifications"]}
    assert verdicts[("obama.jpg", "obama_speech.jpg")] and not verdicts[("obama.jpg", "biden.jpg")]
    assert {f["top"] for f in data["retrospective"]["faces"]} == {"Barack Obama", "Joe Biden"}
    live = data["live"]
    assert [a["name"] for a in live["alerts"]] == ["Barack Obama"]  # Biden walks by and is discarded
    assert live["faces_seen"] >= 2
    assert data["login"]["username"] == "demo" and len(data["login"]["password"]) >= 16
    assert "password (shown once" in proc.stderr  # the first admin's, printed once
    again = subprocess.run([sys.executable, "-m", "vigil", "demo", "--no-serve", "--json"], capture_output=True,
                           text=True, env={"VIGIL_HOME": str(home), "PATH": "/usr/bin:/bin"}, timeout=600)
    assert again.returncode == 0
    assert json.loads(again.stdout.strip().splitlines()[-1])["login"]["password"] is None  # never printed twice
    verify = subprocess.run([sys.executable, "-m", "vigil", "audit", "verify", "--json"], capture_output=True,
                            text=True, env={"VIGIL_HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert json.loads(verify.stdout)["ok"]
