"""``manage.py beacons_import``: counts or event types from a file, all or nothing (the admin's rules)."""

import time

from django.core.management.base import CommandError

from beacons.management.base import BeaconsCommand, Progress, duration, plural
from beacons.transfer import formats, imports
from beacons.transfer.resources import definitions_import

from .beacons_export import format_choose

PROGRESS_EVERY = 100_000


class Command(BeaconsCommand):
    help = (
        "Import counts from a CSV, JSON or XLSX file (the columns beacons_export writes), all or nothing: "
        "merge adds the file's counts, replace sets them. A file with a slug column imports beacon types."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the file to import")
        parser.add_argument("--format", choices=formats.FORMATS, help="default: from the file's extension")
        parser.add_argument("--mode", choices=imports.MODES, required=True, help="merge adds counts; replace sets them")
        parser.add_argument("--dry-run", action="store_true", help="check every row and report, write nothing")

    def handle(self, *args, file, mode, dry_run, **options):
        file_format = format_choose(options["format"], file)
        started = time.monotonic()
        try:
            stream = open(file, "rb")
        except OSError as problem:
            raise CommandError(f"cannot open {file}: {problem.strerror}", returncode=2) from None
        self.progress = Progress(
            stream=self.stderr, unit="rows", every=PROGRESS_EVERY, label="checking" if dry_run else "importing"
        )
        try:
            headers, rows = formats.rows_read(stream=stream, file_format=file_format)
            if "slug" in headers and "period_start" not in headers:
                new, updated, skipped, failed, problems = self.registry_import(headers, rows, dry_run)
            else:
                formats.columns_check(
                    headers=headers, required=formats.REQUIRED_AGGREGATE_COLUMNS, columns=formats.AGGREGATE_COLUMNS
                )
                summary = imports.aggregates_import(
                    rows=rows, mode=mode, dry_run=dry_run, on_progress=self.progress_report
                )
                new, updated, skipped, failed = summary.new, summary.updated, summary.skipped, summary.failed
                problems = [str(problem) for problem in summary.problems]
        except formats.FileProblem as problem:
            raise CommandError(f"{file}: {problem}; nothing imported") from None
        finally:
            stream.close()
            self.progress.close()
        for problem in problems:
            self.stderr.write(problem)
        if failed > len(problems):
            self.stderr.write(f"… and {failed - len(problems):,} more failed rows")
        total = new + updated + skipped + failed
        elapsed = duration(time.monotonic() - started)
        counts = f"{new:,} new, {updated:,} updated, {skipped:,} skipped, {failed:,} failed"
        if failed:
            self.stdout.write(f"checked {plural(total, 'row')} in {elapsed}: {counts}")
            raise CommandError(f"nothing imported: {failed:,} of {plural(total, 'row')} failed")
        if dry_run:
            self.stdout.write(
                f"checked {plural(total, 'row')} in {mode} mode in {elapsed}: {counts}; dry run, nothing written"
            )
        else:
            self.stdout.write(f"imported {plural(total, 'row')} in {mode} mode in {elapsed}: {counts}")

    def progress_report(self, summary: imports.ImportSummary) -> None:
        self.progress.update(summary.rows - self.progress.done)

    def registry_import(self, headers, rows, dry_run):
        result = definitions_import(rows=rows, headers=headers, dry_run=dry_run)
        problems = [str(error.error) for error in result.base_errors]
        for row in result.invalid_rows:
            details = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in row.error_dict.items())
            problems.append(f"row {row.number}: {details}")
        for number, errors in result.row_errors():
            problems.extend(f"row {number}: {error.error}" for error in errors)
        totals = result.totals
        failed = totals["invalid"] + totals["error"] + len(result.base_errors)
        return totals["new"], totals["update"], totals["skip"], failed, problems
