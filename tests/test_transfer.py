"""Import and export of counts and beacon types: the file contract, the commands, the admin."""

import csv
import io
import json
import re
import tempfile
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from beacons.counting.buckets import bucket_start
from beacons.counting.increments import Hit, aggregates_add, increments_for
from beacons.models import BeaconAggregate, BeaconDefinition
from beacons.models import Granularity as G
from beacons.queries import counters
from beacons.transfer import formats, imports
from beacons.transfer.resources import DEFINITION_COLUMNS

from .conftest import first_site, first_site_zone

pytestmark = pytest.mark.django_db
UTC = UTC
FORMULAS = ['=HYPERLINK("http://evil","x")', "+1+2", "-3", "@SUM(A1)", "\tTab", "'=quoted", "''+twice", "'plain"]
UNICODE = ["/café", "/日本語/ページ", "/emoji/🎉", "/rtl/שלום"]


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def record(definition, identifier, at, n=1):
    hits = [Hit(first_site().pk, definition.pk, tuple(definition.granularity_codes), identifier)] * n
    aggregates_add(increments=increments_for(hits=hits, received_at=at))


def snapshot():
    return sorted(
        BeaconAggregate.objects.values_list(
            "definition__slug", "identifier", "granularity", "period_start", "dimension", "count"
        )
    )


def export(tmp_path, file_format="csv", *args, name="out"):
    target = tmp_path / f"{name}.{file_format}"
    call_command("beacons_export", "--output", str(target), *args, stderr=io.StringIO())
    return target


def import_file(path, mode, *args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("beacons_import", str(path), "--mode", mode, *args, stdout=out, stderr=err)
    except CommandError as failure:
        return out.getvalue(), err.getvalue() + str(failure)
    return out.getvalue(), err.getvalue()


# Files written before dimensions had no dimension column: they still import, as identifiers.
COLUMNS_BEFORE_DIMENSIONS = ("site", "event_type", "identifier", "granularity", "period_start", "count")
# Files written before sites had no site column either: they still import, into the first site.
COLUMNS_WITHOUT_SITE = COLUMNS_BEFORE_DIMENSIONS[1:]
IDENTIFIER_COLUMN = formats.AGGREGATE_COLUMNS.index("identifier")


def write_csv(tmp_path, rows, name="in.csv"):
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS_WITHOUT_SITE)
        writer.writerows(rows)
    return path


@pytest.fixture
def page_view():
    return BeaconDefinition.objects.get(slug="page_view")


@pytest.fixture
def traffic(page_view):
    signup = BeaconDefinition.objects.create(slug="signup", name="Sign-ups", granularities="H,D")
    for n, moment in enumerate([utc(2026, 10, 30, 9), utc(2026, 10, 31, 10), utc(2026, 11, 1, 11)], 1):
        for identifier in ["/", "/pricing", *UNICODE, *FORMULAS]:
            record(page_view, identifier, moment, n)
    record(signup, "newsletter", utc(2026, 11, 1, 12), 4)
    return page_view


# --- the file contract --------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", formats.FORMATS)
def test_export_delete_import_replace_restores_identical_counts(traffic, tmp_path, file_format):
    before = snapshot()
    path = export(tmp_path, file_format)
    BeaconAggregate.objects.all().delete()

    out, _ = import_file(path, "replace")

    assert out.startswith(f"imported {len(before):,} rows in replace mode in ")
    assert f": {len(before):,} new, 0 updated, 0 skipped, 0 failed" in out
    assert snapshot() == before


def test_replace_twice_gives_the_same_counts(traffic, tmp_path):
    before = snapshot()
    path = export(tmp_path)
    import_file(path, "replace")
    out, _ = import_file(path, "replace")
    assert f"0 new, 0 updated, {len(before):,} skipped" in out
    assert snapshot() == before


def test_merge_twice_into_an_empty_database_doubles_the_counts(traffic, tmp_path):
    before = snapshot()
    path = export(tmp_path, "json")
    BeaconAggregate.objects.all().delete()
    import_file(path, "merge")
    out, _ = import_file(path, "merge")
    assert f"0 new, {len(before):,} updated" in out
    assert snapshot() == [(*key, count * 2) for *key, count in before]


def test_merge_adds_to_counts_already_stored(page_view, tmp_path):
    record(page_view, "/a", utc(2026, 11, 1, 9), 5)
    path = write_csv(tmp_path, [["page_view", "/a", "hour", "2026-11-01T09:00:00+00:00", "3"]])
    import_file(path, "merge")
    stored = BeaconAggregate.objects.get(identifier="/a", granularity=G.HOUR)
    assert stored.count == 8


def test_a_bucket_repeated_in_one_file_adds_in_merge_and_last_wins_in_replace(page_view, tmp_path):
    rows = [["page_view", "/a", "day", "2026-11-01T00:00:00+00:00", n] for n in (2, 5)]
    path = write_csv(tmp_path, rows)
    out, _ = import_file(path, "merge")
    assert "1 new, 1 updated" in out
    assert BeaconAggregate.objects.get(identifier="/a").count == 7
    import_file(path, "replace")
    assert BeaconAggregate.objects.get(identifier="/a").count == 5


BAD_ROWS = {
    "unknown granularity": (["page_view", "/x", "week", "2026-11-02T00:00:00+00:00", "1"], "granularity"),
    "period start not aligned": (
        ["page_view", "/x", "day", "2026-11-02T06:00:00+00:00", "1"],
        "not the start of its day",
    ),
    "period start without offset": (["page_view", "/x", "day", "2026-11-02T00:00:00", "1"], "no UTC offset"),
    "negative count": (["page_view", "/x", "day", "2026-11-02T00:00:00+00:00", "-4"], "negative"),
    "non-integer count": (["page_view", "/x", "day", "2026-11-02T00:00:00+00:00", "2.5"], "whole number"),
    "identifier too long": (["page_view", "x" * 257, "day", "2026-11-02T00:00:00+00:00", "1"], "longer than 256"),
    "bad event type": (["Page View!", "/x", "day", "2026-11-02T00:00:00+00:00", "1"], "event_type"),
}


@pytest.mark.parametrize("problem", BAD_ROWS)
def test_a_file_with_one_bad_row_writes_nothing_and_names_the_row(page_view, tmp_path, problem):
    bad, message = BAD_ROWS[problem]
    good = [["page_view", f"/ok{n}", "day", "2026-11-01T00:00:00+00:00", "1"] for n in range(4)]
    path = write_csv(
        tmp_path, [*good[:2], bad, *good[2:], ["brand_new_type", "", "day", "2026-11-01T00:00:00+00:00", "1"]]
    )

    out, err = import_file(path, "merge")

    assert "row 3:" in err and message in err
    assert "5 new, 0 updated, 0 skipped, 1 failed" in out
    assert "nothing imported" in err
    assert BeaconAggregate.objects.count() == 0
    assert not BeaconDefinition.objects.filter(slug="brand_new_type").exists()


def test_unknown_event_types_register_as_at_ingest(db, tmp_path):
    path = write_csv(tmp_path, [["download_click", "brochure.pdf", "day", "2026-11-01T00:00:00+00:00", "7"]])
    import_file(path, "merge")
    definition = BeaconDefinition.objects.get(slug="download_click")
    assert definition.aggregates.get().count == 7


def test_unknown_event_types_are_row_errors_in_strict_mode(db, tmp_path, settings):
    settings.BEACONS_STRICT = True
    path = write_csv(
        tmp_path,
        [
            ["page_view", "/", "day", "2026-11-01T00:00:00+00:00", "1"],
            ["download_click", "brochure.pdf", "day", "2026-11-01T00:00:00+00:00", "7"],
        ],
    )
    out, err = import_file(path, "merge")
    assert "row 2: event_type: unknown event type 'download_click'" in err
    assert BeaconAggregate.objects.count() == 0
    assert not BeaconDefinition.objects.filter(slug="download_click").exists()


def test_dry_run_reports_and_writes_nothing(page_view, tmp_path):
    path = write_csv(tmp_path, [["page_view", "/", "day", "2026-11-01T00:00:00+00:00", "1"]])
    out, _ = import_file(path, "merge", "--dry-run")
    assert "1 new" in out and "dry run" in out
    assert BeaconAggregate.objects.count() == 0


def test_missing_column_is_reported_without_writing(page_view, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("event_type,identifier,granularity,count\npage_view,/,day,1\n")
    _, err = import_file(path, "merge")
    assert "no period_start column" in err


# --- time zones ---------------------------------------------------------------------------------


def test_offset_file_into_a_utc_site_lands_on_the_same_instants(page_view, tmp_path):
    path = write_csv(tmp_path, [["page_view", "/", "hour", "2026-11-01T05:30:00+05:30", "3"]])
    import_file(path, "merge")
    assert BeaconAggregate.objects.get().period_start == utc(2026, 11, 1, 0)


def test_offset_file_day_that_is_not_a_site_day_is_rejected(page_view, tmp_path):
    path = write_csv(tmp_path, [["page_view", "/", "day", "2026-11-01T00:00:00+05:30", "3"]])
    _, err = import_file(path, "merge")
    assert "row 1: period_start:" in err and "that day starts at 2026-10-31T00:00:00+00:00" in err
    assert BeaconAggregate.objects.count() == 0


def test_period_starts_are_written_and_read_in_the_sites_time_zone(page_view, tmp_path):
    first_site_zone("Europe/London")
    record(page_view, "/", utc(2026, 7, 1, 12), 2)  # summer: days start at 23:00 UTC
    record(page_view, "/", utc(2026, 12, 1, 12), 3)  # winter: at 00:00 UTC
    before = snapshot()
    path = export(tmp_path, "csv", "--granularity", "day")
    text = path.read_text()
    assert "2026-07-01T00:00:00+01:00" in text and "2026-12-01T00:00:00+00:00" in text

    BeaconAggregate.objects.all().delete()
    import_file(path, "replace")
    assert [row for row in snapshot() if row[2] == G.DAY] == [row for row in before if row[2] == G.DAY]

    wrong = write_csv(tmp_path, [["page_view", "/", "day", "2026-07-01T00:00:00+00:00", "1"]], name="utc.csv")
    _, err = import_file(wrong, "merge")
    assert "that day starts at 2026-07-01T00:00:00+01:00" in err


# --- spreadsheet formulas and unicode -----------------------------------------------------------


def test_formula_identifiers_are_neutralised_in_csv_cells(traffic, tmp_path):
    rows = list(csv.reader(io.StringIO(export(tmp_path, "csv").read_text(encoding="utf-8"))))
    identifiers = {row[IDENTIFIER_COLUMN] for row in rows[1:]}
    assert "'" + FORMULAS[0] in identifiers
    assert "''=quoted" in identifiers and "'''+twice" in identifiers and "'plain" in identifiers
    assert not any(cell[:1] in "=+-@\t\r" and cell for row in rows for cell in row)
    assert set(UNICODE) <= identifiers


def test_formula_identifiers_are_text_cells_in_xlsx(traffic, tmp_path):
    sheet = openpyxl.load_workbook(export(tmp_path, "xlsx")).active
    cells = [row[IDENTIFIER_COLUMN] for row in sheet.iter_rows(min_row=2)]
    assert all(cell.data_type != "f" for cell in cells)
    assert "'" + FORMULAS[0] in {cell.value for cell in cells}
    assert set(UNICODE) <= {cell.value for cell in cells}


def test_json_export_keeps_identifiers_as_they_are(traffic, tmp_path):
    items = json.loads(export(tmp_path, "json").read_text(encoding="utf-8"))
    assert set(FORMULAS) | set(UNICODE) <= {item["identifier"] for item in items}
    assert set(items[0]) == set(formats.AGGREGATE_COLUMNS)


def test_cell_neutralising_round_trips_every_text():
    for text in [*FORMULAS, *UNICODE, "", "'", "''", "a=b", "'-", "\r\n"]:
        assert formats.cell_restore(formats.cell_neutralise(text)) == text


# --- beacon types -------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", formats.FORMATS)
def test_beacon_types_round_trip_by_slug(db, tmp_path, file_format):
    BeaconDefinition.objects.create(
        slug="js_error",
        name="=Front-end errors",
        kind=BeaconDefinition.Kind.ERROR,
        granularities="M,H,D",
        keep_raw=True,
        raw_retention_days=14,
        alert_emails="ops@example.com",
        alert_threshold=50,
        alert_on_new=False,
    )
    fields = DEFINITION_COLUMNS
    before = sorted(BeaconDefinition.objects.values_list(*fields))
    path = export(tmp_path, file_format, "--registry")
    BeaconDefinition.objects.filter(slug="js_error").delete()
    BeaconDefinition.objects.filter(slug="page_view").update(name="Renamed", granularities="D")

    out, err = import_file(path, "merge")

    assert "1 new, 1 updated" in out, err
    assert sorted(BeaconDefinition.objects.values_list(*fields)) == before


def test_invalid_beacon_type_row_writes_nothing(db, tmp_path):
    path = tmp_path / "types.csv"
    path.write_text("slug,name,granularities\nnew_one,New,hour\nbad,Bad,fortnight\n")
    out, err = import_file(path, "merge")
    assert "row 2" in err and "granularities" in err
    assert not BeaconDefinition.objects.filter(slug="new_one").exists()


# --- admin --------------------------------------------------------------------------------------


def admin_url(name, model="beaconaggregate"):
    return reverse(f"admin:beacons_{model}_{name}")


def format_index(file_format):
    return {"csv": "0", "xlsx": "1", "json": "2"}[file_format]


def admin_upload(admin_client, content, file_format, mode="merge", model="beaconaggregate"):
    upload = io.BytesIO(content)
    upload.name = f"upload.{file_format}"
    data = {"import_file": upload, "format": format_index(file_format), "resource": "0"}
    if model == "beaconaggregate":
        data["mode"] = mode
    return admin_client.post(admin_url("import", model), data)


def admin_confirm(admin_client, preview, model="beaconaggregate"):
    form = preview.context["confirm_form"]
    data = {name: form.initial[name] for name in form.fields if name in form.initial}
    return admin_client.post(admin_url("process_import", model), data)


def test_admin_import_uploads_previews_and_confirms(admin_client, page_view):
    record(page_view, "/a", utc(2026, 11, 1, 9), 5)
    content = (
        b"event_type,identifier,granularity,period_start,count\r\n"
        b"page_view,/a,hour,2026-11-01T09:00:00+00:00,3\r\n"
        b"page_view,<b>/new</b>,hour,2026-11-01T09:00:00+00:00,2\r\n"
    )

    preview = admin_upload(admin_client, content, "csv", mode="merge")

    assert preview.status_code == 200
    page = preview.content.decode()
    assert "1 new, 1 updated, 0 skipped" in page and "5 → 8" in page
    assert "&lt;b&gt;/new&lt;/b&gt;" in page and "<b>/new</b>" not in page
    assert BeaconAggregate.objects.get(identifier="/a", granularity=G.HOUR).count == 5  # preview wrote nothing

    done = admin_confirm(admin_client, preview)

    assert done.status_code == 302
    assert BeaconAggregate.objects.get(identifier="/a", granularity=G.HOUR).count == 8
    assert BeaconAggregate.objects.get(identifier="<b>/new</b>").count == 2


def test_admin_import_lists_bad_rows_and_offers_no_confirm(admin_client, page_view):
    content = (
        b"event_type,identifier,granularity,period_start,count\n"
        b"page_view,/a,hour,2026-11-01T09:00:00+00:00,3\n"
        b"page_view,/b,hour,2026-11-01T09:30:00+00:00,3\n"
        b"page_view,/c,fortnight,2026-11-01T09:00:00+00:00,-1\n"
    )
    response = admin_upload(admin_client, content, "csv")
    page = response.content.decode()
    assert "confirm_form" not in response.context or response.context["confirm_form"] is None
    assert "2 of 3 rows failed" in page and "not the start of its hour" in page and "fortnight" in page
    assert BeaconAggregate.objects.count() == 0


def test_admin_import_page_offers_mode_and_example_files(admin_client, db):
    page = admin_client.get(admin_url("import")).content.decode()
    assert 'name="mode"' in page and "replace" in page
    example = admin_client.get(reverse("admin:beacons_beaconaggregate_import_example", args=["csv"]))
    content = b"".join(example.streaming_content)
    assert content.startswith(b"site,event_type,dimension,identifier,granularity,period_start,count")
    preview = admin_upload(admin_client, content, "csv")
    assert "4 new" in preview.content.decode()


def test_admin_replace_import_sets_counts(admin_client, page_view):
    record(page_view, "/a", utc(2026, 11, 1, 9), 5)
    content = b"event_type,identifier,granularity,period_start,count\npage_view,/a,hour,2026-11-01T09:00:00+00:00,3\n"
    preview = admin_upload(admin_client, content, "csv", mode="replace")
    admin_confirm(admin_client, preview)
    assert BeaconAggregate.objects.get(identifier="/a", granularity=G.HOUR).count == 3


def admin_export(admin_client, file_format, query="", model="beaconaggregate"):
    response = admin_client.post(
        admin_url("export", model) + query, {"format": format_index(file_format), "resource": "0"}
    )
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_admin_and_command_export_the_same_file_for_the_same_filter(admin_client, traffic, tmp_path, file_format):
    query = f"?definition__id__exact={traffic.pk}&granularity__exact=D"
    from_admin = admin_export(admin_client, file_format, query)
    from_command = export(tmp_path, file_format, "--definition", "page_view", "--granularity", "day").read_bytes()
    assert from_admin == from_command
    assert (
        from_admin.count(b"page_view") == BeaconAggregate.objects.filter(definition=traffic, granularity=G.DAY).count()
    )


def test_admin_export_of_beacon_types_imports_back(admin_client, db):
    content = admin_export(admin_client, "csv", model="beacondefinition")
    assert content.startswith(b"slug,name,description,kind")
    BeaconDefinition.objects.filter(slug="error").delete()
    preview = admin_upload(admin_client, content, "csv", model="beacondefinition")
    admin_confirm(admin_client, preview, model="beacondefinition")
    assert BeaconDefinition.objects.get(slug="error").granularity_codes == [G.MINUTE, G.HOUR, G.DAY, G.MONTH]


def test_last_months_daily_page_views_survive_an_xlsx_trip_through_the_admin(admin_client, page_view, settings):
    """Done when: export last month's daily page views as XLSX, import into an emptied database, same chart."""
    settings.TIME_ZONE = settings.BEACONS_TIME_ZONE = "Europe/London"  # admin date filters use TIME_ZONE
    now = datetime.now(UTC)
    this_month = bucket_start(now, G.MONTH)
    last_month = bucket_start(this_month - timedelta(days=1), G.MONTH)
    moment, n = last_month + timedelta(hours=7), 0
    while moment < this_month + timedelta(days=2):
        n += 1
        record(page_view, f"/page/{n % 4}", moment, n % 7 + 1)
        moment += timedelta(hours=17)
    local = last_month.astimezone(ZoneInfo("Europe/London"))
    query = (
        f"?definition__id__exact={page_view.pk}&granularity__exact=D"
        f"&period_start__year={local.year}&period_start__month={local.month}"
    )

    def chart():
        return {
            identifier: counters.series(
                site=first_site(),
                definitions=[page_view],
                granularity=G.DAY,
                start=last_month,
                end=this_month,
                identifier=identifier,
            )
            for identifier in ["", "/page/0", "/page/1", "/page/2", "/page/3"]
        }

    expected = chart()
    content = admin_export(admin_client, "xlsx", query)
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    granularity = formats.AGGREGATE_COLUMNS.index("granularity")
    assert {row[granularity] for row in sheet.iter_rows(min_row=2, values_only=True)} == {"day"}

    BeaconAggregate.objects.all().delete()
    preview = admin_upload(admin_client, content, "xlsx", mode="replace")
    assert preview.context["confirm_form"] is not None
    admin_confirm(admin_client, preview)

    assert chart() == expected
    assert sum(count for _, count in expected[""]) > 0
    assert not BeaconAggregate.objects.exclude(granularity=G.DAY).exists()


def test_json_rows_are_read_one_at_a_time_across_read_boundaries():
    items = [{"event_type": "page_view", "identifier": f"/{n}/" + "é" * (n % 300), "count": n} for n in range(3000)]
    content = json.dumps(items, ensure_ascii=False, indent=1).encode()
    headers, rows = formats.rows_read(stream=io.BytesIO(content), file_format="json")
    assert headers == ["event_type", "identifier", "count"]
    assert list(rows) == items


@pytest.mark.parametrize("content", [b"{}", b"[1, 2]", b'[{"a": 1} {"b": 2}]', b'[{"a": 1}, {"b": ', b"\xff\xfe"])
def test_unreadable_json_is_a_file_problem(content):
    with pytest.raises(formats.FileProblem):
        _headers, rows = formats.rows_read(stream=io.BytesIO(content), file_format="json")
        list(rows)


def test_changelists_offer_import_and_export(admin_client, db):
    for model in ["beaconaggregate", "beacondefinition"]:
        page = admin_client.get(reverse(f"admin:beacons_{model}_changelist")).content.decode()
        assert admin_url("import", model) in page and admin_url("export", model) in page


def test_staff_who_may_only_view_counts_can_export_but_not_import(client, django_user_model, page_view):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_beaconaggregate"))
    client.force_login(user)
    assert client.get(admin_url("import")).status_code == 403
    assert admin_export(client, "csv").startswith(b"site,event_type,")


def test_export_command_writes_to_standard_output_with_filters(traffic):
    out = io.StringIO()
    call_command(
        "beacons_export",
        "--definition",
        "signup",
        "--start",
        "2026-11-01",
        "--end",
        "2026-11-02",
        stdout=out,
        stderr=io.StringIO(),
    )
    header, *rows = csv.reader(io.StringIO(out.getvalue()))
    assert header == list(formats.AGGREGATE_COLUMNS)
    site = first_site().domain
    assert sorted(rows) == [
        [site, "signup", "", "", "day", "2026-11-01T00:00:00+00:00", "4"],
        [site, "signup", "", "", "hour", "2026-11-01T12:00:00+00:00", "4"],
        [site, "signup", "", "newsletter", "day", "2026-11-01T00:00:00+00:00", "4"],
        [site, "signup", "", "newsletter", "hour", "2026-11-01T12:00:00+00:00", "4"],
    ]


def test_large_file_is_written_in_chunks_and_repeats_across_chunks_are_updates(page_view, tmp_path):
    rows = [["page_view", f"/p/{n}", "hour", "2026-11-01T09:00:00+00:00", 1] for n in range(1200)]
    rows += [["page_view", "/p/0", "hour", "2026-11-01T09:00:00+00:00", 1]]  # the same bucket, three chunks later
    path = write_csv(tmp_path, rows)
    out, _ = import_file(path, "merge")
    assert "1,200 new, 1 updated, 0 skipped, 0 failed" in out
    assert BeaconAggregate.objects.count() == 1200
    assert BeaconAggregate.objects.get(identifier="/p/0").count == 2


@pytest.mark.parametrize(
    "file_format, content",
    [
        ("xlsx", b"not a workbook"),
        ("json", b'{"event_type": "page_view"}'),
        ("json", b"[1, 2, 3]"),
        ("csv", b"\xff\xfe\x00garbage"),
        ("csv", b"name,colour\nx,red\n"),
    ],
)
def test_admin_import_of_an_unreadable_file_explains_instead_of_failing(admin_client, db, file_format, content):
    response = admin_upload(admin_client, content, file_format)
    assert response.status_code == 200
    assert response.context.get("confirm_form") is None
    assert BeaconAggregate.objects.count() == 0


@pytest.mark.parametrize(
    "name, content", [("in.xlsx", b"not a workbook"), ("in.json", b"[{}, 1]"), ("in.csv", b"\xff\xfe\xfa")]
)
def test_import_command_refuses_an_unreadable_file(db, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    _, err = import_file(path, "merge")
    assert "nothing imported" in err


@pytest.mark.parametrize("count", ["1e999999999", "9" * 5000, "NaN", "Infinity", "", "1,000", "true"])
def test_hostile_counts_are_row_errors(page_view, tmp_path, count):
    path = write_csv(tmp_path, [["page_view", "/", "day", "2026-11-01T00:00:00+00:00", count]])
    _, err = import_file(path, "merge")
    assert "row 1: count:" in err and len(err) < 500
    assert BeaconAggregate.objects.count() == 0


# --- limits: decompressed size, dates, text, overflow, forged file names, bad filters ----------


def xlsx_with_padding(padding: int, count: int = 3) -> bytes:
    """A one-row counts workbook whose sheet XML carries ``padding`` bytes of whitespace
    (valid XML that deflates ~1000:1: a zip bomb when large)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(COLUMNS_WITHOUT_SITE))
    sheet.append(["page_view", "/a", "day", "2026-11-01T00:00:00+00:00", count])
    plain = io.BytesIO()
    book.save(plain)
    bomb = io.BytesIO()
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename == "xl/worksheets/sheet1.xml":
                assert b"<sheetData>" in data
                data = data.replace(b"<sheetData>", b"<sheetData>" + b" " * padding, 1)
            target.writestr(member.filename, data)
    return bomb.getvalue()


def test_an_xlsx_that_unpacks_past_the_limit_is_refused_by_the_command(page_view, tmp_path, settings):
    settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES = 1_000_000
    small, bomb = tmp_path / "small.xlsx", tmp_path / "bomb.xlsx"
    small.write_bytes(xlsx_with_padding(1_000))
    bomb.write_bytes(xlsx_with_padding(2_000_000))
    assert bomb.stat().st_size < 20_000

    out, err = import_file(bomb, "merge")
    assert "more than the 1,000,000 allowed (BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES)" in err
    assert "nothing imported" in err and BeaconAggregate.objects.count() == 0

    out, err = import_file(small, "merge")
    assert "1 new" in out and BeaconAggregate.objects.get().count == 3


def test_an_xlsx_that_unpacks_past_the_limit_is_refused_by_the_admin(admin_client, page_view, settings):
    settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES = 1_000_000

    response = admin_upload(admin_client, xlsx_with_padding(2_000_000), "xlsx")

    assert response.status_code == 200 and response.context.get("confirm_form") is None
    assert "more than the 1,000,000 allowed (BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES)" in response.content.decode()
    preview = admin_upload(admin_client, xlsx_with_padding(1_000), "xlsx")
    assert preview.context["confirm_form"] is not None


def test_an_admin_upload_larger_than_the_limit_is_refused_before_it_is_read(admin_client, page_view, settings):
    settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES = 10_000
    rows = "".join(f"page_view,/p{n},day,2026-11-01T00:00:00+00:00,1\n" for n in range(400))
    content = ("event_type,identifier,granularity,period_start,count\n" + rows).encode()
    assert len(content) > 10_000

    response = admin_upload(admin_client, content, "csv")

    assert response.status_code == 200 and response.context.get("confirm_form") is None
    assert f"The file is {len(content):,} bytes, more than the 10,000 allowed" in response.content.decode()
    assert BeaconAggregate.objects.count() == 0


@pytest.mark.parametrize(
    "period_start",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-05:00",
        "9999-12-31T00:00:00+00:00",
        "1969-12-31T00:00:00+00:00",
        "2201-01-01T00:00:00+00:00",
    ],
)
def test_period_starts_outside_1970_to_2200_are_row_errors(page_view, tmp_path, period_start):
    path = write_csv(tmp_path, [["page_view", "/", "day", period_start, "1"]])
    out, err = import_file(path, "merge")
    assert f"row 1: period_start: '{period_start}' is outside the years 1970–2200" in err
    assert BeaconAggregate.objects.count() == 0


def test_period_starts_at_the_edges_of_the_range_import(page_view, tmp_path):
    path = write_csv(
        tmp_path,
        [
            ["page_view", "/", "day", "1970-01-01T00:00:00+00:00", "1"],
            ["page_view", "/", "day", "2200-12-31T00:00:00+00:00", "2"],
        ],
    )
    out, err = import_file(path, "merge")
    assert "2 new" in out and BeaconAggregate.objects.count() == 2


def test_an_identifier_with_a_lone_surrogate_is_a_row_error(page_view, tmp_path):
    path = tmp_path / "in.json"
    path.write_text(
        '[{"event_type": "page_view", "identifier": "/a\\ud800", "granularity": "day",'
        ' "period_start": "2026-11-01T00:00:00+00:00", "count": 1}]'
    )
    out, err = import_file(path, "merge")
    assert "row 1: identifier: contains a NUL character or invalid Unicode" in err
    assert BeaconAggregate.objects.count() == 0


def test_an_admin_import_with_a_lone_surrogate_lists_the_row(admin_client, page_view):
    content = (
        b'[{"event_type": "page_view", "identifier": "/a\\ud800", "granularity": "day",'
        b' "period_start": "2026-11-01T00:00:00+00:00", "count": 1}]'
    )
    response = admin_upload(admin_client, content, "json")
    assert response.status_code == 200 and "invalid Unicode" in response.content.decode()
    assert BeaconAggregate.objects.count() == 0


@pytest.mark.parametrize("stored", [None, imports.MAX_COUNT - 1])
def test_a_merge_past_the_largest_count_is_a_row_error(page_view, tmp_path, stored):
    day = utc(2026, 11, 1)
    if stored is not None:
        BeaconAggregate.objects.create(
            site=first_site(), definition=page_view, identifier="/", granularity=G.DAY, period_start=day, count=stored
        )
    rows = [["page_view", "/", "day", "2026-11-01T00:00:00+00:00", str(imports.MAX_COUNT)]] * 2
    path = write_csv(tmp_path, rows if stored is None else rows[:1])

    out, err = import_file(path, "merge")

    bad_row = 2 if stored is None else 1
    assert f"row {bad_row}: count:" in err and "is more than the largest count, 9,223,372,036,854,775,807" in err
    assert "nothing imported" in err
    assert list(BeaconAggregate.objects.values_list("count", flat=True)) == ([] if stored is None else [stored])


def test_admin_import_of_a_merge_past_the_largest_count_lists_the_row(admin_client, page_view):
    row = f"page_view,/,day,2026-11-01T00:00:00+00:00,{imports.MAX_COUNT}\n"
    content = ("event_type,identifier,granularity,period_start,count\n" + row + row).encode()
    response = admin_upload(admin_client, content, "csv")
    assert response.status_code == 200 and "more than the largest count" in response.content.decode()
    assert BeaconAggregate.objects.count() == 0


@pytest.fixture
def file_outside_the_upload():
    """A counts file another process left in the temp folder."""
    path = Path(tempfile.gettempdir()) / f"beacons-not-uploaded-{uuid.uuid4().hex}.csv"
    path.write_text(
        "event_type,identifier,granularity,period_start,count\npage_view,/stolen,day,2026-11-01T00:00:00+00:00,7\n"
    )
    yield path
    path.unlink(missing_ok=True)


@pytest.mark.parametrize("forged", ["../../tmp/{name}", "{name}", "{path}"])
def test_admin_import_confirm_reads_no_file_but_the_one_uploaded(
    admin_client, page_view, file_outside_the_upload, forged
):
    content = b"event_type,identifier,granularity,period_start,count\npage_view,/mine,day,2026-11-01T00:00:00+00:00,1\n"
    preview = admin_upload(admin_client, content, "csv")
    form = preview.context["confirm_form"]
    data = {name: form.initial[name] for name in form.fields if name in form.initial}
    data["import_file_name"] = forged.format(name=file_outside_the_upload.name, path=file_outside_the_upload)

    response = admin_client.post(admin_url("process_import"), data)

    assert response.status_code == 200
    assert "This upload is not yours or has expired" in response.content.decode()
    assert file_outside_the_upload.exists()
    assert BeaconAggregate.objects.count() == 0


def test_admin_import_confirm_by_another_user_is_refused(admin_client, page_view, django_user_model):
    content = b"event_type,identifier,granularity,period_start,count\npage_view,/mine,day,2026-11-01T00:00:00+00:00,1\n"
    preview = admin_upload(admin_client, content, "csv")
    form = preview.context["confirm_form"]
    data = {name: form.initial[name] for name in form.fields if name in form.initial}
    other = type(admin_client)()
    other.force_login(django_user_model.objects.create(username="other-admin", is_staff=True, is_superuser=True))

    response = other.post(admin_url("process_import"), data)

    assert "This upload is not yours or has expired" in response.content.decode()
    assert BeaconAggregate.objects.count() == 0
    assert admin_confirm(admin_client, preview).status_code == 302  # the uploader still may
    assert BeaconAggregate.objects.get().identifier == "/mine"


@pytest.mark.parametrize(
    "query",
    [
        "definition__id__exact=abc",
        "definition__id__exact=",
        "no_such_field=1",
        "period_start__year=9999",
        "period_start__year=9999&period_start__month=12",
        "period_start__year=2026&period_start__month=13",
    ],
)
def test_admin_export_with_a_filter_it_cannot_apply_goes_back_to_the_list(admin_client, traffic, query):
    response = admin_client.get(admin_url("export") + "?" + query)
    assert response.status_code == 302
    assert response["Location"] == admin_url("changelist") + "?e=1"


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ("beaconaggregate", "period_start"),
        ("beaconevent", "received_at"),
        ("droppedhits", "day"),
        ("errorgroup", "last_seen"),
    ],
)
@pytest.mark.parametrize(
    "drill_down", ["year=9999", "year=9999&{field}__month=12", "year=9999&{field}__month=12&{field}__day=31"]
)
def test_admin_lists_answer_a_year_9999_drill_down_without_a_500(admin_client, db, model, field, drill_down):
    response = admin_client.get(admin_url("changelist", model) + f"?{field}__" + drill_down.format(field=field))
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_admin_import_lists_each_bad_row_in_words_not_only_on_hover(admin_client, page_view):
    content = (
        b"event_type,identifier,granularity,period_start,count\n"
        b"page_view,/a,hour,2026-11-01T09:00:00+00:00,3\n"
        b"page_view,/b,hour,2026-11-01T09:30:00+00:00,3\n"
        b"page_view,<i>/c</i>,fortnight,2026-11-01T09:00:00+00:00,-1\n"
    )
    page = admin_upload(admin_client, content, "csv").content.decode()
    listed = re.search(r'<ul class="import-row-problems">(.*?)</ul>', page, re.S)
    assert listed, "no list of the bad rows"
    assert [" ".join(item.split()) for item in re.findall(r"<li>(.*?)</li>", listed.group(1), re.S)] == [
        "Row 2, period_start: 2026-11-01T09:30:00+00:00 is not the start of its hour in UTC; "
        "that hour starts at 2026-11-01T09:00:00+00:00",
        "Row 3, granularity: &#x27;fortnight&#x27; is not a granularity; use one of second, minute, hour, day, month, year",
        "Row 3, count: -1 is negative",
    ]


def test_admin_import_explains_merge_and_replace_with_an_example(admin_client, db):
    page = " ".join(admin_client.get(admin_url("import")).content.decode().split())
    assert "Merge makes it 150" in page and "replace makes it 30" in page


# --- sites ------------------------------------------------------------------------------


def test_counts_export_and_import_by_site_domain_and_a_file_without_sites_lands_in_the_first(page_view, tmp_path):
    from beacons.models import Site

    shop = Site.objects.create(domain="shop.example.com", name="Shop")
    rows = [
        ["shop.example.com", "page_view", "/cart", "day", "2026-11-01T00:00:00+00:00", "5"],
        ["", "page_view", "/cart", "day", "2026-11-01T00:00:00+00:00", "2"],  # blank: the first site
        ["SHOP.example.com", "page_view", "/cart", "day", "2026-11-01T00:00:00+00:00", "1"],
    ]
    path = tmp_path / "sites.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([COLUMNS_BEFORE_DIMENSIONS, *rows])
    out, err = import_file(path, "merge")
    assert "2 new, 1 updated" in out, err
    stored = {
        (row.site.domain, row.count)
        for row in BeaconAggregate.objects.filter(identifier="/cart").select_related("site")
    }
    assert stored == {("shop.example.com", 6), (first_site().domain, 2)}
    legacy = write_csv(tmp_path, [["page_view", "/old", "day", "2026-11-01T00:00:00+00:00", "3"]], name="old.csv")
    import_file(legacy, "merge")
    assert BeaconAggregate.objects.get(identifier="/old").site == first_site()

    out = io.StringIO()
    call_command("beacons_export", "--site", shop.domain, stdout=out, stderr=io.StringIO())
    header, *exported = csv.reader(io.StringIO(out.getvalue()))
    assert exported == [["shop.example.com", "page_view", "", "/cart", "day", "2026-11-01T00:00:00+00:00", "6"]]
    with pytest.raises(CommandError, match="no site"):
        call_command("beacons_export", "--site", "nope.example.com", stdout=io.StringIO(), stderr=io.StringIO())


def test_an_unknown_or_malformed_site_is_a_row_error_and_nothing_is_written(page_view, tmp_path):
    rows = [
        ["blog.example.com", "page_view", "/", "day", "2026-11-01T00:00:00+00:00", "5"],
        ["https://x.example/", "page_view", "/", "day", "2026-11-01T00:00:00+00:00", "5"],
        ["", "page_view", "/", "day", "2026-11-01T00:00:00+00:00", "5"],
    ]
    path = tmp_path / "bad-sites.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([COLUMNS_BEFORE_DIMENSIONS, *rows])
    out, err = import_file(path, "merge")
    assert "row 1: site: unknown site 'blog.example.com'" in err
    assert "row 2: site:" in err and "without http://" in err
    assert not BeaconAggregate.objects.exists()


# --- dimensions ---------------------------------------------------------------------------------


def _dimension_rows(page_view):
    day = utc(2026, 11, 1)
    aggregates_add(
        increments={
            (first_site().pk, page_view.pk, "source", "google.com", G.DAY, day): 5,
            (first_site().pk, page_view.pk, "prop:plan", "=pro", G.DAY, day): 2,
            (first_site().pk, page_view.pk, "", "google.com", G.DAY, day): 1,  # an identifier of the same text
        }
    )


@pytest.mark.parametrize("file_format", formats.FORMATS)
def test_dimension_counts_round_trip_under_their_dimension(page_view, tmp_path, file_format):
    _dimension_rows(page_view)
    before = snapshot()
    path = export(tmp_path, file_format)
    BeaconAggregate.objects.all().delete()
    out, err = import_file(path, "replace")
    assert "3 new, 0 updated, 0 skipped, 0 failed" in out, err
    assert snapshot() == before


def test_an_export_names_each_counters_dimension(page_view, tmp_path):
    _dimension_rows(page_view)
    header, *rows = csv.reader(io.StringIO(export(tmp_path, "csv").read_text(encoding="utf-8")))
    assert header == list(formats.AGGREGATE_COLUMNS)
    dimension, identifier = header.index("dimension"), IDENTIFIER_COLUMN
    assert sorted((row[dimension], row[identifier]) for row in rows) == [
        ("", "google.com"),
        ("prop:plan", "'=pro"),  # a formula-like value is neutralised like any identifier
        ("source", "google.com"),
    ]


def test_a_file_with_a_dimension_column_merges_into_that_dimension_and_a_bad_code_is_a_row_error(page_view, tmp_path):
    rows = [
        ["", "page_view", "country", "DE", "day", "2026-11-01T00:00:00+00:00", "4"],
        ["", "page_view", "", "/", "day", "2026-11-01T00:00:00+00:00", "1"],
        ["", "page_view", "colour", "red", "day", "2026-11-01T00:00:00+00:00", "1"],
        ["", "page_view", "prop:has space", "x", "day", "2026-11-01T00:00:00+00:00", "1"],
    ]
    path = tmp_path / "dimensions.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([formats.AGGREGATE_COLUMNS, *rows])
    out, err = import_file(path, "merge")
    assert "row 3: dimension: 'colour' is not a dimension" in err
    assert "row 4: dimension:" in err and "is not a property name" in err
    assert not BeaconAggregate.objects.exists()  # all or nothing
    path.write_text(path.read_text(encoding="utf-8").rsplit("\n", 3)[0] + "\n", encoding="utf-8")
    out, err = import_file(path, "merge")
    assert "2 new" in out, err
    assert BeaconAggregate.objects.get(dimension="country").identifier == "DE"
    assert BeaconAggregate.objects.get(dimension="").identifier == "/"
