import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, time as day_start
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from beacons import transfer
from beacons.buckets import bucket_zone
from beacons.models import BeaconDefinition
from beacons.resources import DEFINITION_COLUMNS, BeaconDefinitionResource

PROGRESS_EVERY = 100_000


def moment_parse(text: str) -> datetime:
    """A date or an ISO 8601 date and time; without an offset it is read in BEACONS_TIME_ZONE."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (2026-11-01) or an ISO 8601 date and time") from None
    if len(text) <= 10:  # a date: its midnight
        moment = datetime.combine(moment.date(), day_start())
    return moment if moment.tzinfo else moment.replace(tzinfo=bucket_zone())


def format_choose(file_format: str | None, path: str | None) -> str:
    if file_format:
        return file_format
    suffix = Path(path).suffix.lower().lstrip(".") if path and path != "-" else ""
    return suffix if suffix in transfer.FORMATS else "csv"


class Command(BaseCommand):
    help = (
        "Export counts (event_type, identifier, granularity, period_start, count) as CSV, JSON or XLSX, "
        "streaming; or, with --registry, the beacon types."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=transfer.FORMATS, help="default: from --output's extension, else csv")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")
        parser.add_argument("--definition", metavar="SLUG", help="only this event type")
        parser.add_argument("--granularity", choices=list(transfer.GRANULARITY_CODES), help="only this bucket size")
        parser.add_argument("--start", type=moment_parse, help="period starts from this date/time on (inclusive)")
        parser.add_argument("--end", type=moment_parse, help="period starts before this date/time (exclusive)")
        parser.add_argument("--registry", action="store_true", help="export the beacon types instead of counts")

    def handle(self, *args, **options):
        file_format = format_choose(options["format"], options["output"])
        started = time.monotonic()
        exported = 0

        def counted(rows: Iterable[list]) -> Iterator[list]:
            nonlocal exported
            for row in rows:
                exported += 1
                if exported % PROGRESS_EVERY == 0:
                    self.stderr.write(f"… {exported:,} rows")
                yield row

        if options["registry"]:
            definitions = BeaconDefinition.objects.all()
            if options["definition"]:
                definitions = definitions.filter(slug=options["definition"])
            rows = BeaconDefinitionResource().rows(queryset=definitions)
            chunks = transfer.rows_write(headers=DEFINITION_COLUMNS, rows=counted(rows), file_format=file_format)
        else:
            if options["definition"] and not BeaconDefinition.objects.filter(slug=options["definition"]).exists():
                raise CommandError(f"no beacon type {options['definition']!r}")
            queryset = transfer.aggregates_filter(
                definition=options["definition"],
                granularity=transfer.GRANULARITY_CODES.get(options["granularity"] or ""),
                start=options["start"],
                end=options["end"],
            )
            rows = transfer.aggregates_rows(queryset=queryset)
            chunks = transfer.rows_write(headers=transfer.AGGREGATE_COLUMNS, rows=counted(rows), file_format=file_format)

        output = options["output"]
        if output and output != "-":
            with open(output, "wb") as file:
                for chunk in chunks:
                    file.write(chunk)
        elif file_format == "xlsx":
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        else:
            for chunk in chunks:  # each chunk holds whole characters
                self.stdout.write(chunk.decode(), ending="")
        elapsed = time.monotonic() - started
        where = output if output and output != "-" else "standard output"
        self.stderr.write(f"exported {exported:,} rows as {file_format} to {where} ({elapsed * 1000:.0f}ms/{exported}r)")
