"""The data model: sites, event types (the registry), counters, single events, error groups, salts, drain batches, API keys, shared links, flags and experiments."""

import random
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from beacons.domains import (
    DOMAIN_MAX_LENGTH,
    InvalidDomain,
    default_time_zone,
    domain_normalise,
    validate_domain,
    validate_origins,
    validate_time_zone,
)

# A letter or digit first: "..", "." or ".gif" must never become a type (nor a path segment).
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,63}$"
IDENTIFIER_MAX_LENGTH = 256


class Granularity(models.TextChoices):
    SECOND = "S", "second"
    MINUTE = "M", "minute"
    HOUR = "H", "hour"
    DAY = "D", "day"
    MONTH = "MO", "month"
    YEAR = "Y", "year"


GRANULARITY_ORDER = [g.value for g in Granularity]  # finest first
FINE_GRANULARITIES = {Granularity.SECOND.value, Granularity.MINUTE.value}
DEFAULT_GRANULARITIES = "H,D,MO,Y"


def granularities_split(value: str) -> list[str]:
    """The codes of a comma-separated ``granularities`` value, as written (empty parts skipped)."""
    return [code for code in value.split(",") if code]


def validate_granularities(value: str) -> None:
    from django.core.exceptions import ValidationError

    codes = granularities_split(value)
    unknown = [code for code in codes if code not in GRANULARITY_ORDER]
    if unknown or not codes:
        raise ValidationError("Choose at least one of: second, minute, hour, day, month, year.")


def dimensions_split(value: str) -> list[str]:
    """The codes of a comma-separated ``dimensions`` or ``property_keys`` value, as written."""
    return [code.strip() for code in value.split(",") if code.strip()]


def validate_dimensions(value: str) -> None:
    from django.core.exceptions import ValidationError

    from beacons.dimensions import BUILT_IN

    unknown = [code for code in dimensions_split(value) if code not in BUILT_IN]
    if unknown:
        raise ValidationError(f"Unknown dimensions: {', '.join(unknown)[:200]}. Choose from: {', '.join(BUILT_IN)}.")


def validate_property_keys(value: str) -> None:
    from django.core.exceptions import ValidationError

    from beacons.dimensions import MAX_PROPERTY_KEYS, InvalidDimension, property_key_check

    keys = dimensions_split(value)
    if len(keys) > MAX_PROPERTY_KEYS:
        raise ValidationError(f"At most {MAX_PROPERTY_KEYS} properties per event type.")
    for key in keys:
        try:
            property_key_check(key)
        except InvalidDimension as problem:
            raise ValidationError(str(problem)) from None


def default_dimensions(kind: str) -> str:
    """The built-in dimensions a new type keeps: all for page views, none for the other kinds."""
    from beacons.dimensions import BUILT_IN

    return ",".join(BUILT_IN) if kind == "page_view" else ""


class Site(models.Model):
    """A domain the product counts for. Counters, single events and error groups belong to one
    site; the registry of event types is shared by all."""

    domain = models.CharField(
        max_length=DOMAIN_MAX_LENGTH,
        unique=True,
        validators=[validate_domain],
        help_text="The host name its pages are served from, e.g. shop.example.com (no http://, port or path). "
        "Beacons name it in their “site” field, or are matched to it by their Origin or Referer.",
    )
    name = models.CharField(max_length=120, help_text="What staff see in the site switcher.")
    time_zone = models.CharField(
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="An IANA time zone name, e.g. Europe/Berlin. Stored for the site; counters are still bucketed "
        "in BEACONS_TIME_ZONE for every site.",
    )
    extra_origins = models.TextField(
        "extra allowed origins",
        blank=True,
        validators=[validate_origins],
        help_text="Other web origins whose pages may send beacons for this site, one per line, e.g. "
        "https://checkout.example.net. The site's own https:// and http:// origins are always allowed.",
    )
    is_active = models.BooleanField(
        "counting", default=True, help_text="Turn off to refuse this site's beacons (403); its counts stay."
    )
    umami_website_id = models.UUIDField(
        "Umami website id",
        null=True,
        blank=True,
        unique=True,
        help_text="Moving from Umami: the website id your pages' Umami script sends (data-website-id); "
        "its events count for this site.",
    )
    sentry_project_id = models.PositiveIntegerField(
        "Sentry project id",
        null=True,
        blank=True,
        unique=True,
        help_text="Moving from Sentry: the number at the end of the DSN (…/<project id>). Events sent there "
        "become this site's errors.",
    )
    sentry_public_key = models.CharField(
        "Sentry public key",
        max_length=64,
        blank=True,
        validators=[RegexValidator(r"^[0-9a-f]{32}$", "32 hexadecimal digits, as in a Sentry DSN.")],
        help_text="The DSN's key (https://<public key>@host/<project id>): events with another key get 401.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="beacon_sites",
        help_text="Staff who may see this site's dashboard and errors. Superusers see every site.",
    )

    class Meta:
        ordering = ["name", "domain"]

    def __str__(self) -> str:
        return self.name or self.domain

    def clean_fields(self, exclude=None) -> None:
        try:
            self.domain = domain_normalise(self.domain)
        except InvalidDomain:
            pass  # the field's validator says what is wrong
        super().clean_fields(exclude=exclude)


class BeaconDefinition(models.Model):
    class Kind(models.TextChoices):
        PAGE_VIEW = "page_view", "Page view"
        CUSTOM = "custom", "Custom event"
        ERROR = "error", "JavaScript error"
        ACTION = "action", "User action"

    class IdentifierRule(models.TextChoices):
        PAYLOAD = "payload", "Sent with the beacon"
        PATH = "path", "Last part of the beacon address"
        REFERER = "referer", "Page the beacon was sent from"
        NONE = "none", "None: count totals only"

    slug = models.CharField(
        "event type",
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                SLUG_PATTERN, "Use 1–64 lower-case letters, digits, or _ . : -, starting with a letter or digit"
            )
        ],
        help_text="The name websites send, e.g. page_view or download_click. Lower-case letters, "
        "digits and _ . : - only, starting with a letter or digit. Changing it breaks websites that already send the old name.",
    )
    name = models.CharField(
        max_length=120, help_text="What staff see on the dashboard, e.g. “Page views” or “Brochure downloads”."
    )
    description = models.TextField(blank=True, help_text="Optional: what this counts and who asked for it.")
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        default=Kind.CUSTOM,
        help_text="Page view: a page was shown (counted per page address). Custom event: something your own code "
        "reports when it happens, e.g. a sign-up completed or a video played. User action: a click or tap on a "
        "button or link, e.g. sent by data-beacon attributes. Custom events and user actions are counted the same "
        "way; the kind tells staff what the numbers mean. JavaScript error: grouped, and can send alert emails.",
    )
    identifier_rule = models.CharField(
        "what each count is about",
        max_length=16,
        choices=IdentifierRule.choices,
        default=IdentifierRule.PAYLOAD,
        help_text="Where the thing being counted (a page, a file, a button) comes from when the website "
        "does not say. “Page the beacon was sent from” uses the address of the page the visitor was on.",
    )
    keep_query_string = models.BooleanField(
        default=False,
        help_text="Count /shop?colour=red and /shop?colour=blue separately. Off: both count as /shop.",
    )
    granularities = models.CharField(
        "time buckets",
        max_length=32,
        default=DEFAULT_GRANULARITIES,
        validators=[validate_granularities],
        help_text="How finely counts are kept. Hour, day, month and year suit most needs; seconds and minutes "
        "cost more storage and are only kept for a few days (see below).",
    )
    dimensions = models.CharField(
        "breakdowns",
        max_length=128,
        blank=True,
        default="",
        validators=[validate_dimensions],
        help_text="Also count by where visitors came from, what they use and where they are. Page views keep "
        "them all by default, other types none. Each one adds a few rows per day.",
    )
    property_keys = models.CharField(
        "properties",
        max_length=(32 + 1) * 10,
        blank=True,
        default="",
        validators=[validate_property_keys],
        help_text="Names of values sent in the beacon's meta to count separately, separated by commas, e.g. "
        "plan, method: meta.plan = “pro” counts under property “plan”, value “pro”. At most 10; "
        "letters, digits, _ and - only.",
    )
    dimensions_by_hour = models.BooleanField(
        "breakdowns by hour",
        default=False,
        help_text="Keep the breakdowns above per hour too (kept for the hour retention below). Off: per day, "
        "month and year.",
    )
    keep_raw = models.BooleanField(
        "keep each event",
        default=False,
        help_text="Also store every single event with its details (needed for errors). Uses more space.",
    )
    raw_retention_days = models.PositiveIntegerField(
        "keep single events for (days)",
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Single events older than this are deleted. Counts are not affected.",
    )
    fine_retention_days = models.PositiveIntegerField(
        "keep second and minute counts for (days)",
        default=7,
        validators=[MinValueValidator(1)],
        help_text="Second and minute counts older than this are deleted; hour, day, month and year counts stay.",
    )
    hour_retention_days = models.PositiveIntegerField(
        "keep hour counts per page and per value for (days)",
        default=92,
        validators=[MinValueValidator(1)],
        help_text="Hour counts of single pages (and of sources, browsers and other values) older than this are "
        "deleted; their days, months and years stay, and so do the hour totals. 92 days keeps the "
        "“30 days by hour” view of one page complete.",
    )
    is_active = models.BooleanField(
        "counting", default=True, help_text="Turn off to ignore this event type without changing any website."
    )
    # Error alerts: used when kind is "error". Empty values fall back to the site settings.
    alert_emails = models.TextField(
        blank=True,
        help_text="Who gets error alert emails, separated by commas. Empty: the site's default alert addresses.",
    )
    alert_on_new = models.BooleanField(default=True, help_text="Email when an error is seen for the first time.")
    alert_on_regression = models.BooleanField(
        default=True, help_text="Email when an error marked as resolved happens again."
    )
    alert_threshold = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Email when one error happens more than this many times within the window below. "
        "Empty: the site default.",
    )
    alert_window_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Window for the threshold, in minutes."
    )
    alert_cooldown_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(60 * 24 * 30)],
        help_text="At most one email per error within this many minutes, however often it happens.",
    )
    auto_registered = models.BooleanField(
        default=False,
        editable=False,
        help_text="Registered by its first beacon rather than in the admin (counts against BEACONS_MAX_AUTO_TYPES).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "event type"
        # The dashboard's type choices (admin-registered first, by name) read the first rows of
        # this index instead of sorting every registered type.
        indexes = [models.Index(fields=["auto_registered", "name", "slug"], name="beacon_def_listed")]
        constraints = [
            models.CheckConstraint(condition=models.Q(slug__regex=SLUG_PATTERN), name="beacon_definition_slug_format"),
        ]

    def __str__(self) -> str:
        return self.name or self.slug

    # Read for every hit (twice or more): each is worked out once per distinct stored text.
    @property
    def granularity_codes(self) -> list[str]:
        return list(granularity_codes_of(self.granularities))

    @property
    def dimension_granularity_codes(self) -> list[str]:
        """Where its dimension values count: the day, month and year it keeps, and the hour when asked."""
        return list(dimension_granularity_codes_of(self.granularities, self.dimensions_by_hour))

    @property
    def dimension_codes(self) -> list[str]:
        """The dimensions it keeps counters for: the built-in ones ticked, then ``prop:<key>`` per property."""
        return list(_dimension_codes(self.dimensions, self.property_keys))


@lru_cache(maxsize=256)
def granularity_codes_of(granularities: str) -> tuple[str, ...]:
    """``BeaconDefinition.granularity_codes`` of a stored ``granularities`` text, finest first."""
    codes = set(granularities_split(granularities))
    return tuple(code for code in GRANULARITY_ORDER if code in codes)


@lru_cache(maxsize=256)
def dimension_granularity_codes_of(granularities: str, by_hour: bool) -> tuple[str, ...]:
    """``BeaconDefinition.dimension_granularity_codes`` of a stored ``granularities`` text."""
    wanted = {Granularity.DAY, Granularity.MONTH, Granularity.YEAR}
    if by_hour:
        wanted.add(Granularity.HOUR)
    return tuple(code for code in granularity_codes_of(granularities) if code in wanted)


@lru_cache(maxsize=256)
def _dimension_codes(dimensions: str, property_keys: str) -> tuple[str, ...]:
    from beacons.dimensions import BUILT_IN, property_dimension

    ticked = set(dimensions_split(dimensions))
    return tuple(code for code in BUILT_IN if code in ticked) + tuple(
        property_dimension(key) for key in dimensions_split(property_keys)
    )


DIMENSION_MAX_LENGTH = 40  # "prop:" and a property key of at most 32 characters, with room to spare
IDENTIFIER_DIMENSION = ""  # the identifier axis: value = identifier, and value "" = the total


class BeaconAggregate(models.Model):
    """One counter per (site, definition, dimension, value, granularity, bucket).

    ``dimension`` "" is the identifier axis: ``identifier`` is the identifier (a page, a file),
    and the identifier "" holds the total over all of them. Any other dimension (``source``,
    ``browser``, ``country``, ``prop:plan``, …; see ``beacons.dimensions``) keeps one row per value
    of it, the value in the ``identifier`` column; its values add up to the hits that had one.
    Rows are only written through ``beacons.counting.increments``: added to by its upserts (never
    read-modify-write), set by imports in replace mode, or inserted once when their keys are
    known to be new (the demo's first fill). Retention and rebuilding delete them.
    """

    # No index of its own: the unique key and the indexes below all start with it. No
    # database constraint either: checking it cost a drain ~3 s per million new rows. Django
    # still deletes a definition's counts with it; the drain skips counts of a deleted
    # definition, and ``beacons_purge`` removes any the direct sink wrote meanwhile.
    # No index and no database constraint, for the definition's reasons. A site with counts
    # cannot be deleted (turn it off instead): its counts would go with it.
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="aggregates", db_index=False, db_constraint=False
    )
    definition = models.ForeignKey(
        BeaconDefinition, on_delete=models.CASCADE, related_name="aggregates", db_index=False, db_constraint=False
    )
    # The readable code itself, not a number: dimension rows are a few percent of all rows, and
    # the identifier rows (nearly all) store "" in one byte.
    dimension = models.CharField(max_length=DIMENSION_MAX_LENGTH, blank=True, default=IDENTIFIER_DIMENSION)
    # The identifier, or the dimension's value. Kept under its first name: files, the admin
    # and most reads are about identifiers. Storing texts once and referencing them by id
    # measured 20% smaller rows (bench/counter_storage.py) but costs a lookup on every write
    # and a join on every read; the partial index below saved more.
    identifier = models.CharField("value", max_length=IDENTIFIER_MAX_LENGTH, blank=True, default="")
    granularity = models.CharField(max_length=2, choices=Granularity.choices)
    period_start = models.DateTimeField()
    count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "count"
        verbose_name_plural = "counts"
        constraints = [
            # Site first: every read is of one site, and the site's rows stay together.
            models.UniqueConstraint(
                fields=["site", "definition", "dimension", "identifier", "granularity", "period_start"],
                name="beacon_aggregate_site_key",
            ),
            models.CheckConstraint(condition=models.Q(count__gte=0), name="beacon_aggregate_count_not_negative"),
        ]
        indexes = [
            # Ranges of one axis: the top identifiers, or a breakdown, over a period.
            models.Index(
                fields=["site", "definition", "dimension", "granularity", "period_start"],
                name="beacon_agg_site_def_dim_gran",
            ),
            # Covering (definition_id and count follow the range columns), over the total rows
            # only: ranking every type of a site by its totals over a period reads only this
            # small index, however many types, identifiers and values exist.
            models.Index(
                fields=["site", "granularity", "period_start", "definition", "count"],
                condition=models.Q(dimension="", identifier=""),
                name="beacon_agg_site_totals_cover",
            ),
        ]

    def __str__(self) -> str:
        axis = f"{self.dimension}={self.identifier}" if self.dimension else self.identifier
        return f"{self.site_id}:{self.definition_id}:{axis}:{self.granularity}:{self.period_start:%Y-%m-%d %H:%M}"


def sketch_stamp() -> int:
    """A random stamp for a sketch row's new contents, 1 to 2**30 (a sum of a million fits a 64-bit
    integer). It tells a change apart, it keeps nothing secret: the fast generator, not ``secrets``."""
    return random.getrandbits(30) + 1


class VisitorSketch(models.Model):
    """The unique visitors of one counter key, as a mergeable cardinality sketch (Apache
    DataSketches HLL, see ``beacons.counting.sketches``): a period's unique visitors are the merge
    of the sketches of the buckets that tile it. Same key as ``BeaconAggregate``; the sketch bytes
    are the same on every database. Rows are only written through ``beacons.counting.sketches``
    (read-merge-write under a row lock, so concurrent writers lose no visitor)."""

    # No database constraints, for ``BeaconAggregate``'s reasons (its drain skips deleted types too).
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    definition = models.ForeignKey(
        BeaconDefinition, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    dimension = models.CharField(max_length=DIMENSION_MAX_LENGTH, blank=True, default=IDENTIFIER_DIMENSION)
    identifier = models.CharField("value", max_length=IDENTIFIER_MAX_LENGTH, blank=True, default="")
    granularity = models.CharField(max_length=2, choices=Granularity.choices)
    period_start = models.DateTimeField()
    sketch = models.BinaryField(default=b"")  # b"": no visitor yet
    # New at every write: a merge of rows kept in the cache is checked against their stamps (``queries.visitors``).
    stamp = models.IntegerField(default=sketch_stamp)

    class Meta:
        verbose_name = "visitor sketch"
        constraints = [
            models.UniqueConstraint(
                fields=["site", "definition", "dimension", "identifier", "granularity", "period_start"],
                name="visitor_sketch_site_key",
            ),
        ]

    def __str__(self) -> str:
        axis = f"{self.dimension}={self.identifier}" if self.dimension else self.identifier
        return f"{self.site_id}:{self.definition_id}:{axis}:{self.granularity}:{self.period_start:%Y-%m-%d %H:%M}"


class ErrorGroup(models.Model):
    class Status(models.TextChoices):
        UNRESOLVED = "unresolved", "Unresolved"
        RESOLVED = "resolved", "Resolved"
        IGNORED = "ignored", "Ignored"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="error_groups", db_index=False)
    definition = models.ForeignKey(BeaconDefinition, on_delete=models.CASCADE, related_name="error_groups")
    fingerprint = models.CharField(max_length=64)
    title = models.CharField(
        "grouped as", max_length=500, help_text="The message with its variable parts masked: the grouping key."
    )
    message = models.CharField(
        "latest message", max_length=500, blank=True, default="", help_text="The latest occurrence's message as sent."
    )
    culprit = models.CharField(max_length=500, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    count = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNRESOLVED)
    resolved_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_alerted_at = models.DateTimeField(null=True, blank=True)
    # Threshold alerts count occurrences in a window that starts at the first hit after the
    # previous window ended (a tumbling window kept on the row: no extra query per hit).
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_count = models.BigIntegerField(default=0)
    # The alert waiting to be sent ("" when none), and retry bookkeeping: see beacons.errors.alerts.
    alert_reason = models.CharField(max_length=16, blank=True, default="")
    alert_attempts = models.PositiveSmallIntegerField(default=0)
    alert_failed_handlers = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "definition", "fingerprint"], name="error_group_site_fingerprint"),
        ]
        indexes = [
            models.Index(fields=["site", "status", "last_seen"], name="error_group_site_status_seen"),
            models.Index(
                fields=["alert_reason"], condition=~models.Q(alert_reason=""), name="error_group_alert_pending"
            ),
        ]

    def __str__(self) -> str:
        return self.headline

    @property
    def headline(self) -> str:
        """What staff read as the error's name: the latest real message (the masked title for groups
        recorded before messages were kept)."""
        return self.message or self.title


class BeaconEvent(models.Model):
    """A single event, kept only for definitions with ``keep_raw`` (errors, custom metadata).

    Never holds an IP address: ``visitor_key`` is a hash with a salt that rotates daily.
    """

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="events", db_index=False)
    definition = models.ForeignKey(BeaconDefinition, on_delete=models.CASCADE, related_name="events", db_index=False)
    received_at = models.DateTimeField()
    identifier = models.CharField(max_length=IDENTIFIER_MAX_LENGTH, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    visitor_key = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, blank=True)
    error_group = models.ForeignKey(
        ErrorGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="occurrences"
    )

    class Meta:
        verbose_name = "single event"
        indexes = [
            models.Index(fields=["site", "definition", "received_at"], name="beacon_event_site_def_received"),
            models.Index(fields=["error_group", "received_at"], name="beacon_event_group_received"),
        ]

    def __str__(self) -> str:
        return f"{self.definition_id}:{self.identifier}@{self.received_at:%Y-%m-%d %H:%M:%S}"

    @property
    def meta(self) -> dict:
        """The ``meta`` object the client sent ({} when there is none or it is not an object)."""
        meta = self.payload.get("meta") if isinstance(self.payload, dict) else None
        return meta if isinstance(meta, dict) else {}


class DailySalt(models.Model):
    """The secret mixed into visitor keys; a new one each day, deleted after two days."""

    day = models.DateField(unique=True)
    salt = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"salt of {self.day}"  # never the salt itself


class DroppedHits(models.Model):
    """Hits refused without an error to the client (bots, inactive types), tallied per day."""

    class Reason(models.TextChoices):
        BOT = "bot", "Bot or crawler"
        INACTIVE = "inactive", "Event type switched off"
        UNKNOWN_SITE = "unknown_site", "Unknown site"
        DUPLICATE = "duplicate", "Duplicate event id"
        OVER_BUDGET = "over_budget", "Unknown type over budget"

    day = models.DateField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "dropped hits"
        constraints = [models.UniqueConstraint(fields=["day", "reason"], name="dropped_hits_day_reason")]

    def __str__(self) -> str:
        return f"{self.count} {self.get_reason_display().lower()} on {self.day}"


class DroppedValues(models.Model):
    """Hits whose dimension value counted as "(other)": their (site, type, dimension) already had
    ``BEACONS_MAX_VALUES_PER_DIMENSION`` distinct values that day. Tallied per day."""

    day = models.DateField()
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+", db_index=False)
    definition = models.ForeignKey(BeaconDefinition, on_delete=models.CASCADE, related_name="+", db_index=False)
    dimension = models.CharField(max_length=DIMENSION_MAX_LENGTH)
    count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "dropped values"
        constraints = [
            models.UniqueConstraint(fields=["day", "site", "definition", "dimension"], name="dropped_values_day_key")
        ]

    def __str__(self) -> str:
        return f"{self.count} values of {self.dimension} counted as (other) on {self.day}"


class DrainBatch(models.Model):
    """A batch of Redis counters that has been written to the database (exactly-once drain)."""

    batch_id = models.CharField(max_length=64, unique=True)
    keys = models.PositiveIntegerField(default=0)
    hits = models.BigIntegerField(default=0)
    drained_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "drain batches"

    def __str__(self) -> str:
        return f"drain batch {self.batch_id}"


class RevocableAccess(models.Model):
    """What API keys and shared links have in common: who made one and when, when it was revoked
    (``is_active`` off), and when it was last used (written at most once a ``LAST_USED_EVERY``)."""

    LAST_USED_EVERY = timedelta(minutes=1)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def revoke(self, at: datetime | None = None) -> None:
        """Shut it out from now on; revoking again keeps the first revocation's time."""
        type(self).objects.filter(pk=self.pk, is_active=True).update(is_active=False, revoked_at=at or timezone.now())

    def mark_used(self, at: datetime) -> None:
        """Record a use at ``at``: one write at most once a ``LAST_USED_EVERY``."""
        if self.last_used_at is not None and at - self.last_used_at < self.LAST_USED_EVERY:
            return
        type(self).objects.filter(pk=self.pk).update(last_used_at=at)
        self.last_used_at = at


class ApiKey(RevocableAccess):
    """A key that reads the stats API for the sites it is scoped to (none when empty).

    Only ``prefix`` (shown, and how a key is found) and the SHA-256 of the whole key are stored: the
    key itself is shown once, when it is created (``beacons.api.keys.api_key_create``)."""

    name = models.CharField(max_length=120, help_text="What the key is for, e.g. “weekly report script”.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    sites = models.ManyToManyField(
        Site, blank=True, related_name="api_keys", help_text="The sites this key may read. None: it reads nothing."
    )
    is_active = models.BooleanField("active", default=True, help_text="Untick to revoke the key: it answers 401.")

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ReportSubscription(models.Model):
    """Someone who gets a site's weekly or monthly email report: a staff user (who subscribed
    themselves on the dashboard, and is mailed while they may still see the site) or an address
    an admin entered. The unsubscribe link in every mail carries the row's id signed with
    ``django.core.signing`` (``dashboard.reports``), so no token is stored at all."""

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", "Weekly (the last whole week, Monday to Sunday)"
        MONTHLY = "monthly", "Monthly (the last whole month)"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="report_subscriptions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="report_subscriptions",
        help_text="A staff member mailed at their account's address while they may see the site.",
    )
    email = models.EmailField(
        blank=True, help_text="An address mailed whoever it belongs to (the report lists new error groups' titles)."
    )
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.WEEKLY)
    is_active = models.BooleanField(
        "active", default=True, help_text="Untick to stop the mails (the unsubscribe link does this)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site", "frequency", "email"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False) & models.Q(email=""))
                | (models.Q(user__isnull=True) & ~models.Q(email="")),
                name="report_subscription_user_or_email",
            ),
            models.UniqueConstraint(
                fields=["site", "user", "frequency"],
                condition=models.Q(user__isnull=False),
                name="report_subscription_user_once",
            ),
            models.UniqueConstraint(
                fields=["site", "email", "frequency"],
                condition=~models.Q(email=""),
                name="report_subscription_email_once",
            ),
        ]

    def __str__(self) -> str:
        who = self.email or (self.user.get_username() if self.user_id else "?")
        return f"{self.get_frequency_display().split(' ')[0]} report of {self.site} to {who}"


class ReportSent(models.Model):
    """One report period claimed for one subscription: the row is committed before the mail is
    sent (at most once; ``sent_at`` stays empty when the process died before the mail went out)."""

    subscription = models.ForeignKey(ReportSubscription, on_delete=models.CASCADE, related_name="sent")
    period_start = models.DateTimeField(help_text="The first moment of the week or month reported.")
    claimed_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: claimed, but the mail was never confirmed sent."
    )

    class Meta:
        verbose_name = "report sent"
        verbose_name_plural = "reports sent"
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "period_start"], name="report_sent_once_per_period"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} for {self.period_start:%Y-%m-%d}"


class SharedLink(RevocableAccess):
    """A read-only link to one site's dashboard (and embeds of its panels), for people without an account.

    Only the SHA-256 of the token is stored (the API keys' rule, ``beacons.api.keys.key_hash``) and only a
    Django password hash of the optional password: the link itself is shown once, when it is created
    (``beacons.sharing.shared_link_create``). Unknown, revoked and expired links all answer 404."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="shared_links")
    label = models.CharField(max_length=120, blank=True, help_text="Who or what the link is for, e.g. “investors”.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    password = models.CharField(max_length=128, blank=True, editable=False)  # make_password's; "" = none
    expires_at = models.DateTimeField(
        "expires", null=True, blank=True, help_text="After this moment the link answers 404. Empty: never."
    )
    is_active = models.BooleanField("active", default=True, help_text="Untick to revoke the link: it answers 404.")

    class Meta:
        verbose_name = "shared link"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label or 'Shared link'} ({self.site.domain})"


FLAG_KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
flag_key_validator = RegexValidator(
    FLAG_KEY_PATTERN, "Lower-case letters, digits, “_”, “.” and “-”, a letter or digit first, at most 64."
)
PERCENT_VALIDATORS = [MinValueValidator(0), MaxValueValidator(100)]


def flag_off() -> bool:
    return False


class Flag(models.Model):
    """A feature flag of one site: a default value, rules that serve other values to some visitors,
    and a kill switch. Published in the GrowthBook SDK payload format (``beacons.experiments.payload``)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="flags")
    key = models.CharField(
        max_length=64,
        validators=[flag_key_validator],
        help_text="What pages and code ask for: beacons.flag('new-checkout'), {% flag \"new-checkout\" %}.",
    )
    description = models.TextField(blank=True, help_text="What it turns on, and who to ask before changing it.")
    enabled = models.BooleanField(
        "on",
        default=True,
        help_text="The kill switch: off serves the default value to everyone (within the flags' cache lifetime, "
        "BEACONS_FLAGS_MAX_AGE seconds).",
    )
    default_value = models.JSONField(
        default=flag_off,
        help_text='JSON: true / false, a number, a "string" (in double quotes) or an object. Served when no rule '
        "matches and when the flag is off.",
    )
    variations = models.JSONField(
        default=list,
        blank=True,
        help_text='Multivariate flags: a JSON list of values, e.g. ["red", "blue"], split among visitors who '
        "match no rule by the weights below. Empty: no split.",
    )
    weights = models.JSONField(
        default=list,
        blank=True,
        help_text="A JSON list of percentages, one per variation, adding up to 100, e.g. [50, 50]. Empty: equal.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["site", "key"]
        constraints = [models.UniqueConstraint(fields=["site", "key"], name="flag_key_unique_per_site")]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        if not isinstance(self.variations, list):
            raise ValidationError({"variations": 'A JSON list of values, e.g. ["red", "blue"].'})
        if not isinstance(self.weights, list) or not all(
            isinstance(weight, int | float) and not isinstance(weight, bool) and weight >= 0 for weight in self.weights
        ):
            raise ValidationError({"weights": "A JSON list of percentages, e.g. [50, 50]."})
        if self.weights and (len(self.weights) != len(self.variations) or abs(sum(self.weights) - 100) > 0.01):
            raise ValidationError({"weights": "One percentage per variation, adding up to 100."})
        if self.site_id and Experiment.objects.filter(site_id=self.site_id, key=self.key).exists():
            raise ValidationError({"key": "An experiment of this site has this key: pages could not tell them apart."})


class FlagRule(models.Model):
    """One rule of a flag, tried in order: visitors whose attribute matches get ``serve``, or the
    rollout percentage of them does (the same visitors each time, by the hash of their unit)."""

    class Operator(models.TextChoices):
        EQUALS = "equals", "equals"
        NOT_EQUALS = "not_equals", "does not equal"
        IN = "in", "is one of (comma-separated)"
        NOT_IN = "not_in", "is none of (comma-separated)"
        CONTAINS = "contains", "contains"
        STARTS_WITH = "starts_with", "starts with"
        VERSION_AT_LEAST = "version_gte", "version ≥"
        VERSION_BELOW = "version_lt", "version <"
        IS_TRUE = "true", "is true"
        IS_FALSE = "false", "is false"

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField(default=0, help_text="Rules are tried from the lowest up.")
    attribute = models.CharField(
        max_length=64,
        blank=True,
        validators=[RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", "A name: letters, digits and “_”.")],
        help_text="site, path, country, device, browser, os, signedIn, or an attribute your pages pass. "
        "Empty: everyone.",
    )
    operator = models.CharField(max_length=16, choices=Operator, default=Operator.EQUALS)
    value = models.CharField(max_length=500, blank=True, help_text="e.g. DE, or DE, AT, CH for “is one of”.")
    serve = models.JSONField(help_text="JSON, like the default value: what matching visitors get.")
    rollout = models.DecimalField(
        "rollout %",
        max_digits=5,
        decimal_places=2,
        default=100,
        validators=PERCENT_VALIDATORS,
        help_text="The share of matching visitors who get it (100: all).",
    )

    class Meta:
        ordering = ["flag", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.attribute or 'everyone'} {self.get_operator_display()} {self.value}".strip()


class Experiment(models.Model):
    """An A/B experiment of one site: variations (control first) split among units by weight,
    a primary metric and secondary ones (event types counted per unit), and its status."""

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        RUNNING = "running", "running"
        STOPPED = "stopped", "stopped"
        CONCLUDED = "concluded", "concluded"

    class Unit(models.TextChoices):
        VISITOR = "visitor", "visitor (a random first-party id)"
        USER = "user", "signed-in user (their keyed hash)"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="experiments")
    key = models.CharField(
        max_length=64,
        validators=[flag_key_validator],
        help_text="What pages and code ask for: beacons.getVariant('checkout-button').",
    )
    name = models.CharField(max_length=120)
    hypothesis = models.TextField(blank=True, help_text="What you expect to change, and why.")
    status = models.CharField(max_length=16, choices=Status, default=Status.DRAFT)
    winner = models.ForeignKey(
        "ExperimentVariation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Concluded experiments serve the winner's config to everyone.",
    )
    coverage = models.DecimalField(
        "share of traffic %",
        max_digits=5,
        decimal_places=2,
        default=100,
        validators=PERCENT_VALIDATORS,
        help_text="The share of units in the experiment; the others see control and are not counted.",
    )
    unit = models.CharField(max_length=16, choices=Unit, default=Unit.VISITOR)
    primary_metric = models.CharField(
        max_length=64,
        validators=[flag_key_validator],
        help_text="The event type a conversion is, e.g. signup: beacons.trackConversion('exp', 'signup').",
    )
    secondary_metrics = models.CharField(
        max_length=400, blank=True, help_text="Other event types to compare, comma-separated."
    )
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    stopped_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["site", "key"], name="experiment_key_unique_per_site")]

    def __str__(self) -> str:
        return self.name or self.key

    def clean(self) -> None:
        if self.site_id and Flag.objects.filter(site_id=self.site_id, key=self.key).exists():
            raise ValidationError({"key": "A flag of this site has this key: pages could not tell them apart."})

    @property
    def metrics(self) -> list[str]:
        """The primary metric first, then the secondary ones."""
        secondary = [name.strip() for name in self.secondary_metrics.split(",") if name.strip()]
        return list(dict.fromkeys([self.primary_metric, *secondary]))


class ExperimentVariation(models.Model):
    """One arm of an experiment; the first by position is control."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variations")
    position = models.PositiveSmallIntegerField(default=0)
    key = models.CharField(
        max_length=32,
        validators=[flag_key_validator],
        help_text="What beacons.getVariant() answers, e.g. control, b.",
    )
    name = models.CharField(max_length=80)
    weight = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=50,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(100)],
        help_text="Percent of the experiment's units, more than 0; the weights add up to 100.",
    )
    config = models.JSONField(
        default=dict, blank=True, help_text="JSON the page gets with this variation: beacons.flag('<experiment key>')."
    )

    class Meta:
        ordering = ["experiment", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variation_key_unique_per_experiment")
        ]

    def __str__(self) -> str:
        return self.name or self.key


class ExperimentExposure(models.Model):
    """A unit's first exposure to an experiment: one row per (experiment, unit), so units are
    counted exactly. A unit that later reports another variation is marked ``conflicted`` and
    left out of the results (and counted as such)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    unit = models.CharField(max_length=64)
    variation = models.PositiveSmallIntegerField()
    conflicted = models.BooleanField(default=False)
    first_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "unit"], name="exposure_unique_per_unit")]
        indexes = [models.Index(fields=["experiment", "variation"], name="exposure_by_variation")]

    def __str__(self) -> str:
        return f"{self.experiment_id}: {self.unit[:8]}… in variation {self.variation}"


class ExperimentConversion(models.Model):
    """A unit's conversions on one metric of an experiment: one row per (experiment, unit, metric),
    so a unit converts once however often it converts, beside how often and for how much."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="conversions")
    unit = models.CharField(max_length=64)
    metric = models.CharField(max_length=64)
    variation = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)
    value_sum = models.FloatField(default=0)
    first_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "unit", "metric"], name="conversion_unique_per_unit")
        ]
        indexes = [models.Index(fields=["experiment", "metric", "variation"], name="conversion_by_variation")]

    def __str__(self) -> str:
        return f"{self.experiment_id}: {self.unit[:8]}… converted on {self.metric} {self.count}×"


PEER_SOURCE_MAX_LENGTH = 64


class PeerImportDay(models.Model):
    """One local day of one kind of file exported by another analytics tool, imported into a site
    (``beacons.transfer.peers``): a later import of that kind of file skips the day, so importing a
    file twice, or an export that overlaps an earlier one, counts each day once."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(
        max_length=PEER_SOURCE_MAX_LENGTH,
        help_text="The tool and the kind of file, e.g. “plausible:imported_pages.csv” or “umami:export.csv”.",
    )
    day = models.DateField(help_text="A calendar day in the site's time zone.")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "imported day"
        ordering = ["site", "source", "day"]
        constraints = [models.UniqueConstraint(fields=["site", "source", "day"], name="peer_import_day_once")]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} of {self.source}"


class ImportedVisitors(models.Model):
    """The unique visitors of one day as another analytics tool counted them, kept as the figure it
    exported: a count cannot become a visitor sketch, so it is never merged into Beacons' own
    unique visitors, and it is shown labelled “imported”."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="imported_visitors")
    source = models.CharField(max_length=32, help_text="The tool that counted them: plausible, umami or goatcounter.")
    day = models.DateField(help_text="A calendar day in the site's time zone.")
    visitors = models.PositiveBigIntegerField()

    class Meta:
        verbose_name = "imported visitors"
        verbose_name_plural = "imported visitors"
        ordering = ["site", "source", "day"]
        constraints = [models.UniqueConstraint(fields=["site", "source", "day"], name="imported_visitors_once")]

    def __str__(self) -> str:
        return f"{self.visitors:,} visitors on {self.day:%Y-%m-%d} (imported from {self.source})"
