"""``manage.py beacons_import_peer``: another analytics tool's export into a site's counters, each day once."""

import time
from pathlib import Path

from django.core.management.base import CommandError

from beacons.domains import InvalidDomain, domain_normalise
from beacons.management.base import BeaconsCommand, Progress, duration, option_error
from beacons.models import Site
from beacons.transfer import peers
from beacons.transfer.formats import FileProblem

PROGRESS_EVERY = 100_000


class Command(BeaconsCommand):
    help = (
        "Import the history another analytics tool exported: Plausible's CSV export (the zip of imported_*.csv), "
        "GoatCounter's CSV export or Umami's data export. Each day of each kind of file is imported once; any bad "
        "row (named by file and line) imports nothing. Unique visitors are kept as imported daily figures."
    )

    def add_arguments(self, parser):
        parser.add_argument("peer", choices=list(peers.PEERS), help="the tool that exported the file")
        parser.add_argument("file", help="the export: a .zip, .csv or .csv.gz file")
        parser.add_argument("--site", required=True, help="the domain of the site to import into, e.g. example.com")
        parser.add_argument("--dry-run", action="store_true", help="check every row and report, write nothing")

    def handle(self, *args, peer, file, site, dry_run, **options):
        started = time.monotonic()
        try:
            domain = domain_normalise(site)
        except InvalidDomain as problem:
            raise option_error(f"--site: {problem}") from None
        target = Site.objects.filter(domain=domain).first()
        if target is None:
            raise option_error(f"--site: there is no site {domain!r}; add it in the admin first")
        try:
            stream = open(file, "rb")
        except OSError as problem:
            raise CommandError(f"cannot open {file}: {problem.strerror}", returncode=2) from None
        label = f"checking {peer}" if dry_run else f"importing {peer}"
        progress = Progress(stream=self.stderr, unit="rows", every=PROGRESS_EVERY, label=label)
        try:
            summary = peers.peer_import(
                peer=peer,
                stream=stream,
                filename=Path(file).name,
                site=target,
                dry_run=dry_run,
                on_progress=progress.update,
            )
        except FileProblem as problem:
            raise CommandError(f"{file}: {problem}; nothing imported") from None
        finally:
            stream.close()
            progress.close()
        for problem in summary.problems:
            self.stderr.write(problem)
        if summary.problem_count > len(summary.problems):
            self.stderr.write(f"… and {summary.problem_count - len(summary.problems):,} more problems")
        for line in summary.lines():
            self.stdout.write(line)
        elapsed = duration(time.monotonic() - started)
        rows = sum(f.rows for f in summary.files)
        if summary.problem_count:
            raise CommandError(f"nothing imported: {summary.problem_count:,} problems in {rows:,} rows ({elapsed})")
        verb = "checked" if dry_run else "imported"
        self.stdout.write(
            f"{verb} {rows:,} rows of {peers.PEERS[peer]} into {target.domain} in {elapsed}: "
            f"{summary.days:,} days, {summary.page_views:,} page views"
        )
