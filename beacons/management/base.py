"""What every ``beacons_*`` command shares: one-line option errors, option value parsers,
progress display and durations in words."""

import argparse
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from beacons.counting.buckets import bucket_zone

OPTION_ERROR_EXIT = 2  # what argparse and most Unix tools exit with for a bad command line


class _OneLineErrorParser(CommandParser):
    def error(self, message):
        if self.called_from_command_line:
            self.exit(OPTION_ERROR_EXIT, f"{self.prog}: {message}\n")  # no usage block: the line says it all
        raise CommandError(message, returncode=OPTION_ERROR_EXIT)


class BeaconsCommand(BaseCommand):
    """A command whose bad option values answer one line naming the option and the expected
    format, with exit code 2, instead of a usage block or a traceback."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = _OneLineErrorParser  # Django builds the parser itself; only error() differs
        return parser


def option_error(message: str) -> CommandError:
    """A bad option value found after parsing (e.g. --end before --start): exit code 2, like a parse error."""
    return CommandError(message, returncode=OPTION_ERROR_EXIT)


# --- option values (argparse ``type=``: a ValueError names the option in one line) -------------


def moment(text: str) -> datetime:
    """A date (its midnight) or an ISO 8601 date and time; without an offset it is read in
    BEACONS_TIME_ZONE."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or a date and time; use YYYY-MM-DD (2026-11-01) or "
            f"YYYY-MM-DDTHH:MM (2026-11-01T10:00), optionally with an offset (+01:00)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=bucket_zone())


def whole_number(minimum: int):
    """A parser of whole numbers of at least ``minimum``, e.g. ``type=whole_number(1)``."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace(",", "").replace("_", ""))
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least {minimum:,} (e.g. 400000)")
        return value

    return parse


def seconds(text: str) -> float:
    """A positive number of seconds, e.g. 2 or 0.5."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds (e.g. 2 or 0.5)")
    return value


# --- saying what happened --------------------------------------------------------------------


def duration(elapsed: float) -> str:
    """Seconds in words for a summary line: "0.2 s", "14 s", "3 min 5 s"."""
    if elapsed < 10:
        return f"{elapsed:.1f} s"
    if elapsed < 60:
        return f"{elapsed:.0f} s"
    minutes, rest = divmod(round(elapsed), 60)
    return f"{minutes} min {rest} s"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """ "1 row", "2,000 rows"."""
    return f"{count:,} {singular if count == 1 else plural_form or singular + 's'}"


class Progress:
    """Progress of a long command on ``stream`` (stderr, so standard output stays the result):
    a tqdm bar when the stream is a terminal, else a plain line every ``every`` units."""

    def __init__(self, *, stream, unit: str, every: int, total: int | None = None, label: str = ""):
        out = getattr(stream, "_out", stream)  # Django's OutputWrapper adds line endings tqdm must not get
        self.out, self.unit, self.every, self.total, self.label = out, unit, every, total, label
        self.done = 0
        self._reported = 0
        self.bar = None
        if getattr(out, "isatty", lambda: False)():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=f" {unit}", desc=label or None, file=out, leave=False, unit_scale=True)

    def update(self, count: int = 1) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        elif self.done - self._reported >= self.every:
            self._reported = self.done - self.done % self.every
            of = f" of {self.total:,}" if self.total else ""
            self.out.write(f"{self.label + ': ' if self.label else ''}… {self.done:,}{of} {self.unit}\n")
            self.out.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
