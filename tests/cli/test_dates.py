"""A date on the command line means what a person means by it (issue #15): an expiry or a
window's end given as a day lasts to the end of that day; a start is its beginning."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.cli_run import run_cli
from vigil.timeutil import parse_when


def test_a_bare_date_is_the_start_of_the_day_or_with_end_of_day_its_last_second():
    assert parse_when("2031-12-31") == datetime(2031, 12, 31, tzinfo=UTC)
    assert parse_when("2031-12-31", end_of_day=True) == datetime(2031, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_when("2031-12-31T12:00", end_of_day=True) == datetime(2031, 12, 31, 12, tzinfo=UTC)  # a time is kept


def test_watchlist_expires_at_the_end_of_the_day_given(home):
    out = run_cli(home, "watchlist", "create", "wanted", "--purpose", "wanted offenders", "--legal-basis", "warrant",
                  "--expires", "2031-12-31",
                  "--json")
    assert out.returncode == 0, out.stderr
    listed = json.loads(run_cli(home, "watchlist", "list", "--json").stdout)["items"]
    assert [w["expires_at"] for w in listed if w["name"] == "wanted"] == ["2031-12-31T23:59:59Z"]
