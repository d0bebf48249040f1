"""django-import-export resources for counts and beacon types, and the beacon-type file rows
the ``beacons_export`` / ``beacons_import`` commands share with the admin.

The file formats live in ``beacons.transfer.formats``, the counts import in ``beacons.transfer.imports``,
the admin's import forms and mixins in ``beacons.transfer.admin_forms``.
"""

from collections.abc import Iterator
from datetime import timedelta

import tablib
from django.core.exceptions import ValidationError
from django.utils import timezone
from import_export import resources, widgets
from import_export.fields import Field
from import_export.results import Error, Result, RowResult

from beacons.counting.buckets import bucket_start, bucket_zone
from beacons.models import GRANULARITY_ORDER, BeaconAggregate, BeaconDefinition, Granularity, granularities_split
from beacons.registry import RESERVED_PREFIX, is_reserved
from beacons.sites import sites_cached
from beacons.transfer import formats, imports

PREVIEW_ROWS = 500  # rows listed on the admin's import preview; the totals cover the whole file
RESTORED_FORMATS = ("csv", "xlsx")  # formats whose text cells were neutralised against formulas

DEFINITION_COLUMNS = (
    "slug",
    "name",
    "description",
    "kind",
    "identifier_rule",
    "keep_query_string",
    "granularities",
    "dimensions",
    "property_keys",
    "dimensions_by_hour",
    "keep_raw",
    "raw_retention_days",
    "fine_retention_days",
    "hour_retention_days",
    "is_active",
    "alert_emails",
    "alert_on_new",
    "alert_on_regression",
    "alert_threshold",
    "alert_window_minutes",
    "alert_cooldown_minutes",
)

IMPORT_TYPES = {
    "new": RowResult.IMPORT_TYPE_NEW,
    "update": RowResult.IMPORT_TYPE_UPDATE,
    "skip": RowResult.IMPORT_TYPE_SKIP,
}


# --- counts -----------------------------------------------------------------------------


class BeaconAggregateResource(resources.ModelResource):
    """Counters by natural key. Import goes through ``imports.aggregates_import`` (bulk upserts,
    all or nothing), not the row-by-row model saves of a plain ModelResource."""

    site = Field(attribute="site__domain", column_name="site")
    event_type = Field(attribute="definition__slug", column_name="event_type")
    dimension = Field(attribute="dimension", column_name="dimension")
    identifier = Field(attribute="identifier", column_name="identifier")
    granularity = Field(attribute="granularity", column_name="granularity")
    period_start = Field(attribute="period_start", column_name="period_start")
    count = Field(attribute="count", column_name="count")

    class Meta:
        model = BeaconAggregate
        fields = formats.AGGREGATE_COLUMNS
        import_order = export_order = formats.AGGREGATE_COLUMNS
        import_id_fields = ("site", "event_type", "dimension", "identifier", "granularity", "period_start")

    @classmethod
    def get_display_name(cls):
        return "Counts"

    def dehydrate_granularity(self, aggregate):
        return formats.GRANULARITY_LABELS[aggregate.granularity]

    def dehydrate_period_start(self, aggregate):
        return formats.period_start_text(aggregate.period_start, bucket_zone(aggregate.site_id))

    def import_data(self, dataset, dry_run=False, raise_errors=False, use_transactions=None, **kwargs):
        """Import ``dataset`` with ``mode`` ("merge" / "replace") and ``file_format`` from kwargs."""
        result = self.get_result_class()()
        result.diff_headers = list(formats.AGGREGATE_COLUMNS)
        result.total_rows = len(dataset)
        headers = [formats.header_normalise(h) for h in dataset.headers or []]
        try:
            formats.columns_check(
                headers=headers, required=formats.REQUIRED_AGGREGATE_COLUMNS, columns=formats.AGGREGATE_COLUMNS
            )
        except formats.FileProblem as problem:
            result.append_base_error(Error(problem))
            return result
        rows = formats.rows_as_dicts(
            headers=headers, rows=dataset, restore=kwargs.get("file_format") in RESTORED_FORMATS
        )
        summary = imports.aggregates_import(
            rows=rows, mode=kwargs.get("mode") or "merge", dry_run=dry_run, preview_limit=PREVIEW_ROWS
        )
        return _result_from_summary(result, summary)


def _result_from_summary(result: Result, summary: imports.ImportSummary) -> Result:
    for outcome in summary.preview:
        row_result = RowResult()
        row_result.import_type = IMPORT_TYPES[outcome.kind]
        row_result.diff = outcome.row.cells()
        if outcome.kind == "update":
            row_result.diff[-1] = f"{outcome.before:,} → {outcome.after:,}"
        result.append_row_result(row_result)
    for problem in summary.problems:
        values = {column: _displayable(value) for column, value in problem.values.items()}
        result.append_invalid_row(problem.number, values, ValidationError(problem.errors))
    result.totals[RowResult.IMPORT_TYPE_NEW] = summary.new
    result.totals[RowResult.IMPORT_TYPE_UPDATE] = summary.updated
    result.totals[RowResult.IMPORT_TYPE_SKIP] = summary.skipped
    result.totals[RowResult.IMPORT_TYPE_INVALID] = summary.failed
    result.summary = summary
    return result


def _displayable(value):
    """A cell as the preview can show it: text that UTF-8 cannot encode (a lone surrogate) is escaped."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def aggregates_example() -> Iterator[list]:
    """Rows of the example file offered on the import page."""
    first = sites_cached().default
    first_site_domain = first.domain if first else ""
    yesterday = bucket_start(timezone.now() - timedelta(days=1), Granularity.DAY)
    hour = bucket_start(yesterday + timedelta(hours=9), Granularity.HOUR)
    for identifier, granularity, start, count in [
        ("", Granularity.DAY, yesterday, 1520),
        ("/pricing", Granularity.DAY, yesterday, 230),
        ("", Granularity.HOUR, hour, 96),
        ("/pricing", Granularity.HOUR, hour, 14),
    ]:
        yield formats.aggregate_cells(
            site=first_site_domain,
            event_type="page_view",
            identifier=identifier,
            granularity=granularity,
            period_start=start,
            count=count,
        )


# --- beacon types -----------------------------------------------------------------------


class GranularitiesWidget(widgets.Widget):
    """``H,D,MO,Y`` in the database, ``hour,day,month,year`` in files."""

    def clean(self, value, row=None, **kwargs):
        labels = [part.strip().lower() for part in str(value or "").split(",") if part.strip()]
        unknown = [label for label in labels if label not in formats.GRANULARITY_CODES]
        if unknown or not labels:
            raise ValueError(f"use one or more of {', '.join(formats.GRANULARITY_CODES)}, separated by commas")
        codes = {formats.GRANULARITY_CODES[label] for label in labels}
        return ",".join(code for code in GRANULARITY_ORDER if code in codes)

    def render(self, value, obj=None, **kwargs):
        return ",".join(formats.GRANULARITY_LABELS[code] for code in granularities_split(value or ""))


class BeaconDefinitionResource(resources.ModelResource):
    """Beacon types by slug: importing updates the type with that slug or registers it."""

    granularities = Field(attribute="granularities", column_name="granularities", widget=GranularitiesWidget())

    class Meta:
        model = BeaconDefinition
        fields = DEFINITION_COLUMNS
        import_order = export_order = DEFINITION_COLUMNS
        import_id_fields = ("slug",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    @classmethod
    def get_display_name(cls):
        return "Beacon types"

    def import_data(self, dataset, dry_run=False, raise_errors=False, use_transactions=None, **kwargs):
        """All or nothing: any invalid row rolls the whole file back."""
        restore = kwargs.get("file_format") in RESTORED_FORMATS
        headers = [formats.header_normalise(h) for h in dataset.headers or []]
        cleaned = tablib.Dataset(headers=headers)
        for row in formats.rows_as_dicts(headers=headers, rows=dataset, restore=restore):
            cleaned.append(["" if row[h] is None else row[h] for h in headers])  # XLSX leaves empty text as None
        kwargs["rollback_on_validation_errors"] = True
        return super().import_data(cleaned, dry_run=dry_run, raise_errors=raise_errors, use_transactions=True, **kwargs)

    def before_import_row(self, row, **kwargs):
        if is_reserved(str(row.get("slug") or "").strip().lower()):
            raise ValidationError({"slug": f"event types starting with {RESERVED_PREFIX!r} are Beacons' own (visits)"})

    def rows(self, *, queryset) -> Iterator[list]:
        for definition in queryset.exclude(slug__startswith=RESERVED_PREFIX).order_by("slug").iterator():
            yield self.export_resource(definition, force_native_type=True)


def definitions_export(*, queryset, file_format: str) -> Iterator[bytes]:
    resource = BeaconDefinitionResource()
    return formats.rows_write(
        headers=DEFINITION_COLUMNS, rows=resource.rows(queryset=queryset), file_format=file_format
    )


def definitions_import(*, rows: Iterator[dict], headers: list[str], dry_run: bool) -> Result:
    """Import beacon type rows (already cell-restored) by slug; returns django-import-export's Result."""
    dataset = tablib.Dataset(headers=headers)
    for row in rows:
        dataset.append([row.get(h) for h in headers])
    return BeaconDefinitionResource().import_data(dataset, dry_run=dry_run)


def definitions_example() -> Iterator[list]:
    example = BeaconDefinition(
        slug="brochure_download", name="Brochure downloads", kind=BeaconDefinition.Kind.CUSTOM, granularities="H,D,MO,Y"
    )
    yield BeaconDefinitionResource().export_resource(example, force_native_type=True)
