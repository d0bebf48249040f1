"""Management commands: bad option values in one line, summaries in words, progress, the demo login."""

import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.urls import reverse

from beacons.models import BeaconAggregate, Granularity

from .conftest import first_site

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
DATE_FORMAT = "use YYYY-MM-DD (2026-11-01) or YYYY-MM-DDTHH:MM (2026-11-01T10:00), optionally with an offset (+01:00)"
SMALL_DEMO = {"hits": 500, "identifiers": 10, "days": 5, "errors": 3, "seed": 1}


def manage(*args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "beacon_site.settings"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def run(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


# --- bad option values: one line naming the option and the format, exit code 2 -----------------


def test_bad_export_date_is_one_line_with_exit_code_2_not_a_traceback():
    done = manage("beacons_export", "--start", "2026-13-01")
    assert done.returncode == 2
    assert done.stderr == (
        f"manage.py beacons_export: argument --start: '2026-13-01' is not a date or a date and time; {DATE_FORMAT}\n"
    )
    assert done.stdout == ""


def test_bad_number_is_one_line_with_exit_code_2():
    done = manage("beacons_demo", "--hits", "lots")
    assert (done.returncode, done.stderr) == (
        2,
        "manage.py beacons_demo: argument --hits: 'lots' is not a whole number of at least 0 (e.g. 400000)\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["beacons_export", "--start", "2026-13-01"],
            f"argument --start: '2026-13-01' is not a date or a date and time; {DATE_FORMAT}",
        ),
        (
            ["beacons_export", "--end", "yesterday"],
            f"argument --end: 'yesterday' is not a date or a date and time; {DATE_FORMAT}",
        ),
        (["beacons_export", "--start", "2026-11-02", "--end", "2026-11-01"], "--end must be after --start"),
        (["beacons_export", "--granularity", "fortnight"], "argument --granularity: invalid choice: 'fortnight'"),
        (["beacons_export", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["beacons_export", "--definition", "nope"], "--definition: no beacon type 'nope'"),
        (
            ["beacons_export", "--output", "/no/such/folder/x.csv"],
            "--output: cannot write /no/such/folder/x.csv: No such file or directory",
        ),
        (
            ["beacons_rebuild", "--start", "2026-11-01", "--end", "2026-11-02", "--definition", "nope"],
            "--definition: no beacon type 'nope'",
        ),
        (
            ["beacons_rebuild", "--start", "2026-11-31", "--end", "2026-12-01"],
            f"argument --start: '2026-11-31' is not a date or a date and time; {DATE_FORMAT}",
        ),
        (
            ["beacons_rebuild", "--start", "2026-11-01", "--end", "2026-11-01T25:00"],
            f"argument --end: '2026-11-01T25:00' is not a date or a date and time; {DATE_FORMAT}",
        ),
        (["beacons_rebuild", "--start", "2026-11-02", "--end", "2026-11-01"], "--end must be after --start"),
        (["beacons_demo", "--hits", "-5"], "argument --hits: '-5' is not a whole number of at least 0 (e.g. 400000)"),
        (
            ["beacons_demo", "--identifiers", "0"],
            "argument --identifiers: '0' is not a whole number of at least 1 (e.g. 400000)",
        ),
        (
            ["beacons_demo", "--days", "a year"],
            "argument --days: 'a year' is not a whole number of at least 1 (e.g. 400000)",
        ),
        (
            ["beacons_demo", "--errors", "1.5"],
            "argument --errors: '1.5' is not a whole number of at least 0 (e.g. 400000)",
        ),
        (["beacons_demo", "--seed", "x"], "argument --seed: 'x' is not a whole number of at least 0 (e.g. 400000)"),
        (["beacons_demo", "--reset", "--add"], "choose one of --reset, --add and --if-empty"),
        (
            ["beacons_drain", "--interval", "0"],
            "argument --interval: '0' is not a positive number of seconds (e.g. 2 or 0.5)",
        ),
        (
            ["beacons_drain", "--attempts", "none"],
            "argument --attempts: 'none' is not a whole number of at least 1 (e.g. 400000)",
        ),
        (["beacons_import", "x.csv", "--mode", "add"], "argument --mode: invalid choice: 'add'"),
        (
            ["beacons_import", "/no/such/file.csv", "--mode", "merge"],
            "cannot open /no/such/file.csv: No such file or directory",
        ),
        (
            ["beacons_demo_login", "--port", "http"],
            "argument --port: 'http' is not a whole number of at least 1 (e.g. 400000)",
        ),
    ],
)
def test_every_option_that_parses_a_value_names_it_and_exits_2(args, message):
    with pytest.raises(CommandError) as failure:
        run(*args)
    assert str(failure.value).startswith(message)
    assert failure.value.returncode == 2


# --- summaries in words ------------------------------------------------------------------------


def test_export_summary_speaks_words(tmp_path):
    call_command("beacons_demo", **SMALL_DEMO, stdout=io.StringIO(), stderr=io.StringIO())
    expected = BeaconAggregate.objects.filter(definition__slug="signup", granularity=Granularity.DAY).count()
    target = tmp_path / "signups.csv"
    _, err = run("beacons_export", "--definition", "signup", "--granularity", "day", "--output", str(target))
    assert re.fullmatch(rf"exported {expected} rows as csv to {re.escape(str(target))} in \d+\.\d s\n", err)


def test_rebuild_summary_speaks_words(send, settings):
    settings.BEACONS_RATE_LIMIT = 0
    send({"events": [{"event_type": "error", "identifier": "/a", "meta": {"message": "x"}}] * 3})
    out, _ = run("beacons_rebuild", "--start", "2020-01-01", "--end", "2100-01-01")
    assert re.search(r"^rebuilt \d+ counters from 3 single events in \d+\.\d s$", out, re.M)


@pytest.mark.parametrize(("seconds", "words"), [(0.04, "0.0 s"), (0.24, "0.2 s"), (14.4, "14 s"), (185, "3 min 5 s")])
def test_durations_read_as_words(seconds, words):
    from beacons.management.base import duration

    assert duration(seconds) == words


# --- the demo data never adds silently -------------------------------------------------------


def page_view_total() -> int:
    """Day page views of the first site (the demo gives the second a quarter of that)."""
    rows = BeaconAggregate.objects.filter(
        site=first_site(), definition__slug="page_view", identifier="", granularity=Granularity.DAY
    )
    return rows.aggregate(n=Sum("count"))["n"] or 0


def test_demo_on_a_database_with_data_asks_for_reset_or_add():
    run("beacons_demo", **SMALL_DEMO)
    assert page_view_total() == 500
    with pytest.raises(CommandError, match="page views already have counts: add --reset .* or --add"):
        run("beacons_demo", **SMALL_DEMO)
    assert page_view_total() == 500
    run("beacons_demo", "--add", **SMALL_DEMO)
    assert page_view_total() == 1000
    out, _ = run("beacons_demo", "--if-empty", **SMALL_DEMO)  # what `make run` does
    assert "nothing to do" in out and page_view_total() == 1000
    out, _ = run("beacons_demo", "--reset", **SMALL_DEMO)
    assert page_view_total() == 500
    assert re.search(
        r"500 page views over 5 days and 10 pages on [\w.]+, a quarter of that on shop.example.com, custom events "
        r"and 3 errors: [\d,]+ counter rows written in \d+\.\d s$",
        out,
    )


# --- progress ---------------------------------------------------------------------------------


def progress_shown(stream, *, updates: int, total: int) -> str:
    from beacons.management.base import Progress

    with Progress(stream=stream, unit="rows", every=2, total=total, label="exporting") as progress:
        for _ in range(updates):
            progress.update()
    return stream.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_plain_lines_when_not_a_terminal():
    assert progress_shown(io.StringIO(), updates=5, total=5) == "exporting: … 2 of 5 rows\nexporting: … 4 of 5 rows\n"


def test_progress_is_a_bar_on_a_terminal():
    drawn = progress_shown(Terminal(), updates=5, total=5)
    assert drawn.startswith("\rexporting:   0%|") and "/5.00 [" in drawn and "rows/s]" in drawn
    assert "… 2 of 5" not in drawn and "\n" not in drawn  # redrawn in place, then cleared


def test_demo_shows_progress_lines_when_not_a_terminal():
    _, err = run("beacons_demo", **{**SMALL_DEMO, "days": 150})
    labels = [re.fullmatch(r"writing (.+): … 100 of 15[01] days", line) for line in err.splitlines()]
    site = first_site().domain
    assert [label and label.group(1) for label in labels] == [
        f"{name} of {domain}"
        for domain in (site, "shop.example.com")
        for name in ("page views", "brochure downloads", "sign-ups")
    ]


def test_export_shows_progress_lines_every_n_rows(monkeypatch, tmp_path):
    from beacons.management.commands import beacons_export

    run("beacons_demo", **SMALL_DEMO)
    monkeypatch.setattr(beacons_export, "PROGRESS_EVERY", 10)
    _, err = run(
        "beacons_export", "--definition", "page_view", "--granularity", "hour", "--output", str(tmp_path / "x.csv")
    )
    assert err.splitlines()[:2] == ["exporting: … 10 rows", "exporting: … 20 rows"]


# --- the demo login stays the same across `make run`s --------------------------------------------


def banner_password(out: str) -> str:
    return re.search(r"password: (\S+)", out).group(1)


def test_demo_login_is_created_once_and_printed_again(tmp_path):
    login_file = tmp_path / ".demo-login"
    first, _ = run("beacons_demo_login", "--file", str(login_file))
    second, _ = run("beacons_demo_login", "--file", str(login_file))
    password = banner_password(first)
    assert banner_password(second) == password
    assert "(new password)" in first and "(same as last time; --reset for a new one)" in second
    user = authenticate(username="demo", password=password)
    assert user is not None and user.is_staff and user.is_superuser
    assert user.email == "demo@localhost"  # so the demo's error alerts reach someone (see alert_audience)
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600


def test_demo_login_reset_makes_a_new_password_and_the_old_one_stops_working(tmp_path):
    login_file = tmp_path / ".demo-login"
    old = banner_password(run("beacons_demo_login", "--file", str(login_file))[0])
    new = banner_password(run("beacons_demo_login", "--reset", "--file", str(login_file))[0])
    assert new != old
    assert authenticate(username="demo", password=old) is None
    assert authenticate(username="demo", password=new) is not None
    assert banner_password(run("beacons_demo_login", "--file", str(login_file))[0]) == new


def test_demo_login_after_the_database_was_replaced_makes_a_working_one(tmp_path):
    login_file = tmp_path / ".demo-login"
    old = banner_password(run("beacons_demo_login", "--file", str(login_file))[0])
    get_user_model().objects.filter(username="demo").delete()  # e.g. db.sqlite3 deleted, file kept
    new = banner_password(run("beacons_demo_login", "--file", str(login_file))[0])
    assert new != old and authenticate(username="demo", password=new) is not None


def test_demo_login_banner_names_the_port_it_is_given(tmp_path):
    out, _ = run("beacons_demo_login", "--port", "8001", "--file", str(tmp_path / ".demo-login"))
    assert "Beacons is starting at http://127.0.0.1:8001/dashboard/" in out


def test_make_run_passes_its_port_to_the_banner_and_the_server():
    done = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, env={**os.environ, "PORT": "8001"}, capture_output=True, text=True
    )
    assert "manage.py beacons_demo_login --host 127.0.0.1 --port 8001" in done.stdout
    assert "manage.py runserver 127.0.0.1:8001" in done.stdout


def test_demo_login_file_is_ignored_by_git():
    done = subprocess.run(["git", "check-ignore", ".demo-login"], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.strip() == ".demo-login"


def test_demo_page_links_to_the_dashboard(client):
    html = client.get(reverse("demo")).content.decode()
    assert f'<a href="{reverse("dashboard:index")}">Dashboard</a>' in html


def test_demo_page_views_come_from_sources_browsers_and_countries_and_sign_ups_have_a_plan():
    from datetime import timedelta

    from django.utils import timezone

    from beacons.models import BeaconDefinition
    from beacons.queries import counters

    run("beacons_demo", **SMALL_DEMO)
    page_view = BeaconDefinition.objects.get(slug="page_view")
    now = timezone.now()
    period = {"site": first_site(), "start": now - timedelta(days=10), "end": now + timedelta(days=1), "limit": None}

    def values(definition, dimension):
        return {
            row.value: row.count for row in counters.breakdown(definition=definition, dimension=dimension, **period)
        }

    total = counters.totals(site=first_site(), definitions=[page_view], start=period["start"], end=period["end"])
    for dimension in ("source", "browser", "os", "device", "country"):  # every hit has one of each
        assert sum(values(page_view, dimension).values()) == total.current == 500
    assert {"Google", "Direct / none", "Hacker News"} <= set(values(page_view, "source"))
    assert set(values(page_view, "device")) <= {"desktop", "mobile", "tablet"}
    assert all(re.fullmatch(r"[A-Z]{2}|\(unknown\)", code) for code in values(page_view, "country"))
    assert 0 < sum(values(page_view, "utm_campaign").values()) < 500  # only campaign links carry one
    signup = BeaconDefinition.objects.get(slug="signup")
    plans = values(signup, "prop:plan")
    signups = counters.totals(site=first_site(), definitions=[signup], start=period["start"], end=period["end"])
    assert set(plans) <= {"free", "pro", "team", "enterprise"} and sum(plans.values()) == signups.current > 0


def test_demo_shares_of_a_day_are_whole_hits_adding_up_to_the_day():
    import random

    from beacons.management.commands.beacons_demo import DIMENSION_VALUES, dimension_shares

    shares = dimension_shares(dimensions=DIMENSION_VALUES, hits=6_389, rng=random.Random(3))
    assert {type(n) for n in shares.values()} == {int}  # PostgreSQL's COPY refuses "3.0" for a count
    assert sum(n for (code, _), n in shares.items() if code == "browser") == 6_389
    assert 0 < sum(n for (code, _), n in shares.items() if code == "utm_medium") < 6_389


def test_demo_visits_hold_every_page_view_with_a_realistic_bounce_rate_and_duration():
    from datetime import timedelta

    from django.utils import timezone

    from beacons.queries import visits

    run("beacons_demo", "--hits", "20000", "--identifiers", "30", "--days", "60", "--errors", "0", "--seed", "3")
    now = timezone.now()
    whole = {"site": first_site(), "start": now - timedelta(days=61), "end": now + timedelta(days=1)}
    figures = visits.visits_totals(**whole).current
    assert figures.pages == page_view_total() == 20000  # every page view is inside a visit
    assert 0.4 <= figures.bounce_rate <= 0.6
    assert 30 <= figures.duration <= 180
    assert 2.0 <= figures.views_per_visit <= 2.8
    from beacons.counting.buckets import bucket_start

    # the dashboard's "Last 30 days": whole days (single pages and values have no demo hour counts)
    recent = {"site": first_site(), "start": bucket_start(now - timedelta(days=29), Granularity.DAY), "end": now}
    by_day = visits.visits_series(granularity=Granularity.DAY, **recent)
    by_hour = visits.visits_series(granularity=Granularity.HOUR, **recent)
    assert (
        sum(f.visits for _, f in by_day)
        == sum(f.visits for _, f in by_hour)
        == visits.visits_totals(**recent).current.visits
    )
    entries = visits.visits_by_entry(limit=None, **recent)
    assert sum(row.current.visits for row in entries) == visits.visits_totals(**recent).current.visits
    sources = visits.visits_by_entry(dimension="source", limit=None, **recent)
    assert sum(row.current.visits for row in sources) == visits.visits_totals(**recent).current.visits
