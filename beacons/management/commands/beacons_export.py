"""``manage.py beacons_export``: counts or event types to a CSV, JSON or XLSX file (the admin's files)."""

import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from beacons.management.base import BeaconsCommand, Progress, duration, moment, option_error, plural
from beacons.models import BeaconDefinition, Site
from beacons.queries import exports
from beacons.transfer import formats
from beacons.transfer.resources import DEFINITION_COLUMNS, BeaconDefinitionResource

PROGRESS_EVERY = 100_000


def format_choose(file_format: str | None, path: str | None) -> str:
    if file_format:
        return file_format
    suffix = Path(path).suffix.lower().lstrip(".") if path and path != "-" else ""
    return suffix if suffix in formats.FORMATS else "csv"


class Command(BeaconsCommand):
    help = (
        "Export counts (site, event_type, identifier, granularity, period_start, count) as CSV, JSON or XLSX, "
        "streaming; or, with --registry, the beacon types."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=formats.FORMATS, help="default: from --output's extension, else csv")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")
        parser.add_argument("--site", metavar="DOMAIN", help="only this site's counts (default: every site)")
        parser.add_argument("--definition", metavar="SLUG", help="only this event type")
        parser.add_argument("--granularity", choices=list(formats.GRANULARITY_CODES), help="only this bucket size")
        parser.add_argument("--start", type=moment, help="period starts from this date/time on (inclusive)")
        parser.add_argument("--end", type=moment, help="period starts before this date/time (exclusive)")
        parser.add_argument("--registry", action="store_true", help="export the beacon types instead of counts")

    def handle(self, *args, **options):
        file_format = format_choose(options["format"], options["output"])
        if options["start"] and options["end"] and options["end"] <= options["start"]:
            raise option_error("--end must be after --start")
        started = time.monotonic()
        progress = Progress(stream=self.stderr, unit="rows", every=PROGRESS_EVERY, label="exporting")

        def counted(rows: Iterable[list]) -> Iterator[list]:
            for row in rows:
                progress.update()
                yield row

        if options["registry"]:
            definitions = BeaconDefinition.objects.all()
            if options["definition"]:
                definitions = definitions.filter(slug=options["definition"])
            rows = BeaconDefinitionResource().rows(queryset=definitions)
            chunks = formats.rows_write(headers=DEFINITION_COLUMNS, rows=counted(rows), file_format=file_format)
        else:
            if options["definition"] and not BeaconDefinition.objects.filter(slug=options["definition"]).exists():
                raise option_error(f"--definition: no beacon type {options['definition']!r}")
            site = (options["site"] or "").strip().lower()
            if site and not Site.objects.filter(domain=site).exists():
                raise option_error(f"--site: no site {options['site']!r}")
            queryset = exports.aggregates_filter(
                site=site or None,
                definition=options["definition"],
                granularity=formats.GRANULARITY_CODES.get(options["granularity"] or ""),
                start=options["start"],
                end=options["end"],
            )
            rows = formats.aggregates_rows(queryset=queryset)
            chunks = formats.rows_write(headers=formats.AGGREGATE_COLUMNS, rows=counted(rows), file_format=file_format)

        output = options["output"]
        with progress:
            self.chunks_write(chunks=chunks, output=output, file_format=file_format)
        where = output if output and output != "-" else "standard output"
        self.stderr.write(
            f"exported {plural(progress.done, 'row')} as {file_format} to {where} in {duration(time.monotonic() - started)}"
        )

    def chunks_write(self, *, chunks: Iterable[bytes], output: str | None, file_format: str) -> None:
        if output and output != "-":
            try:
                file = open(output, "wb")
            except OSError as problem:
                raise option_error(f"--output: cannot write {output}: {problem.strerror}") from None
            with file:
                for chunk in chunks:
                    file.write(chunk)
        elif file_format == "xlsx":
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        else:
            for chunk in chunks:  # each chunk holds whole characters
                self.stdout.write(chunk.decode(), ending="")
