"""A realistic year of traffic on two sites, so the dashboard has something to show on a fresh clone.

The first site (the one the migrations created) gets the traffic asked for; a second site,
``shop.example.com``, gets a quarter of the page views over its own pages and a quarter of the errors, so the site switcher has
something to switch to.

Page views over ~200 pages with Zipf-like popularity, daily and weekly rhythm, a growth
trend, a few campaign spikes and a page launched three weeks ago; two custom events
(brochure downloads, sign-ups with their plan); and a few hundred JavaScript errors sent through the real
ingest path (``events_record``) so they are grouped like live ones, with alerts muted; and the
first site's flags and experiments (``flags_and_experiments_write``): a running A/B test with two
weeks of units exposed and converted, a concluded one and a draft.
Page views are broken down by source, campaign, browser, operating system, device type and
country (``DIMENSION_VALUES``), each day's hits shared among the values with some daily noise.

Counters are generated per hour, then rolled up, so every granularity a definition keeps
(and the "" total row) adds up to exactly the hits generated. Second/minute counters are
written only for the definition's fine retention (at most the last 2 days). Counters are
built with ``counting.increments_add_hits`` (each hit under its identifier and the "" total)
and written day by day inside one transaction: a type without counters yet by plain bulk
inserts (``counting.aggregates_insert_new``, COPY on PostgreSQL), else by the upsert
``counting.aggregates_add``.
"""

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import accumulate

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from beacons.counting.buckets import bucket_after, bucket_start, bucket_zone, site_zone_active
from beacons.counting.increments import (
    aggregates_add,
    aggregates_insert_new,
    increments_add_hits,
    increments_add_values,
)
from beacons.counting.retention import rows_delete
from beacons.counting.sinks import get_sink
from beacons.counting.sketches import sketch_dump, sketch_new, sketch_of
from beacons.dimensions import ANONYMOUS, SIGNED_IN
from beacons.errors.alerts import alerts_suppressed
from beacons.ingest.parsing import EventInput
from beacons.ingest.recording import RequestContext, events_record
from beacons.management.base import BeaconsCommand, Progress, duration, plural, whole_number
from beacons.models import (
    BeaconAggregate,
    BeaconDefinition,
    BeaconEvent,
    ErrorGroup,
    Experiment,
    ExperimentConversion,
    ExperimentExposure,
    ExperimentVariation,
    Flag,
    FlagRule,
    Granularity,
    Site,
    VisitorSketch,
)
from beacons.queries.visitors import IDENTITY
from beacons.sites import sites_cache_clear

G = Granularity
SHOP_DOMAIN = "shop.example.com"  # the second demo site
SHOP_SHARE = 0.25  # of the first site's traffic and errors
FINE_DAYS = 2  # fine (second/minute) buckets only for the most recent days
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

# Share of traffic by local hour of day (0-23) and by weekday (Monday first).
HOURLY = [
    0.25,
    0.18,
    0.14,
    0.12,
    0.12,
    0.16,
    0.3,
    0.55,
    0.85,
    1.05,
    1.15,
    1.2,
    1.15,
    1.15,
    1.2,
    1.15,
    1.05,
    0.95,
    0.85,
    0.8,
    0.75,
    0.65,
    0.5,
    0.35,
]
WEEKDAY = [1.0, 1.05, 1.05, 1.0, 0.9, 0.6, 0.55]

MAIN_PAGES = [
    "/",
    "/pricing",
    "/features",
    "/blog",
    "/docs",
    "/signup",
    "/about",
    "/customers",
    "/integrations",
    "/contact",
    "/login",
    "/security",
    "/changelog",
    "/careers",
    "/status",
    "/privacy",
    "/terms",
]
LAUNCHED_PAGE = "/blog/introducing-live-dashboards"
WORDS = [
    "getting",
    "started",
    "counting",
    "privacy",
    "beacons",
    "dashboards",
    "errors",
    "alerts",
    "teams",
    "scale",
    "postgres",
    "redis",
    "events",
    "custom",
    "pages",
    "tracking",
    "without",
    "cookies",
    "faster",
    "sites",
    "guide",
    "checklist",
    "migrate",
    "export",
    "import",
    "grouping",
    "retention",
    "reports",
    "weekly",
    "api",
]
DOC_SECTIONS = ["setup", "ingest", "dashboard", "errors", "admin", "api", "operations", "privacy"]
DOWNLOADS = [
    "brochure.pdf",
    "price-list-2026.pdf",
    "annual-report.pdf",
    "user-guide.pdf",
    "datasheet-x200.pdf",
    "case-study-acme.pdf",
]
SIGNUP_PLACES = ["pricing-page", "header", "footer", "blog-sidebar"]
CUSTOM_TYPES = [
    # slug, name, description, share of page views, identifiers, declared property keys
    ("download_click", "Brochure downloads", "Clicks on a download link, per file.", 0.04, DOWNLOADS, ""),
    (
        "signup",
        "Sign-ups",
        "Completed sign-up forms, per place the form was opened from.",
        0.006,
        SIGNUP_PLACES,
        "plan",
    ),
]
# Each dimension's values and their weights; None: hits without a value (no utm parameter).
DIMENSION_VALUES: dict[str, list[tuple[str | None, float]]] = {
    "source": [
        ("Google", 38),
        ("Direct / none", 25),
        ("newsletter", 7),
        ("Bing", 4),
        ("DuckDuckGo", 3),
        ("Hacker News", 5),
        ("Twitter", 4),
        ("LinkedIn", 3),
        ("Reddit", 3),
        ("GitHub", 2),
        ("Facebook", 2),
        ("news.example.org", 1.5),
        ("blog.example.net", 1),
        ("Ecosia", 0.5),
        ("stackoverflow.com", 1),
    ],
    "utm_medium": [(None, 84), ("email", 8), ("social", 5), ("cpc", 3)],
    "utm_campaign": [(None, 84), ("weekly-digest", 7), ("spring-launch", 5), ("black-friday", 2), ("webinar", 2)],
    "browser": [
        ("Chrome", 62),
        ("Safari", 19),
        ("Edge", 6),
        ("Firefox", 6),
        ("Samsung Internet", 3),
        ("Opera", 2),
        ("Chrome Mobile WebView", 1),
        ("(unknown)", 1),
    ],
    "os": [
        ("Windows", 33),
        ("Android", 28),
        ("iOS", 18),
        ("Mac OS X", 14),
        ("Linux", 4),
        ("Chrome OS", 1),
        ("(unknown)", 2),
    ],
    "device": [("desktop", 52), ("mobile", 44), ("tablet", 4)],
    "identity": [("anonymous", 82), ("signed_in", 14), ("untracked", 4)],  # untracked: Do-Not-Track views
    "country": [
        ("US", 28),
        ("DE", 9),
        ("GB", 8),
        ("FR", 6),
        ("IN", 6),
        ("CA", 4),
        ("NL", 3),
        ("BR", 3),
        ("ES", 3),
        ("IT", 3),
        ("JP", 2),
        ("AU", 2),
        ("SE", 2),
        ("PL", 2),
        ("CH", 1.5),
        ("AT", 1.5),
        ("BE", 1),
        ("DK", 1),
        ("IE", 1),
        ("MX", 1),
        ("SG", 1),
        ("ZA", 0.5),
        ("NG", 0.5),
        ("KR", 0.5),
        ("(unknown)", 1),
    ],
    "prop:plan": [("free", 60), ("pro", 30), ("team", 9), ("enterprise", 1)],
}
ERRORS = [
    # weight, message, function, file, line
    (
        40,
        "TypeError: Cannot read properties of undefined (reading 'price')",
        "renderPrice",
        "/static/js/pricing.js",
        88,
    ),
    (25, "ReferenceError: gtag is not defined", "trackClick", "/static/js/analytics.js", 12),
    (15, "TypeError: null is not an object (evaluating 'menu.classList')", "toggleMenu", "/static/js/nav.js", 31),
    (10, "SyntaxError: Unexpected token '<' in JSON at position 0", "loadPosts", "/static/js/blog.js", 140),
    (6, "Error: Network request failed", "fetchStatus", "/static/js/status.js", 57),
    (3, "RangeError: Maximum call stack size exceeded", "walkTree", "/static/js/docs-search.js", 203),
    (1, "Uncaught (in promise) AbortError: The user aborted a request.", "saveDraft", "/static/js/editor.js", 19),
]


def page_names(*, count: int, rng: random.Random) -> list[str]:
    """``count`` distinct, realistic page paths, most popular first."""
    names = list(dict.fromkeys(MAIN_PAGES))[:count]
    seen = set(names)
    while len(names) < count:
        if rng.random() < 0.55:
            name = "/blog/" + "-".join(rng.sample(WORDS, rng.randint(2, 4)))
        else:
            name = f"/docs/{rng.choice(DOC_SECTIONS)}/" + "-".join(rng.sample(WORDS, rng.randint(1, 3)))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def zipf_weights(count: int, exponent: float = 1.05) -> list[float]:
    return [1 / (rank**exponent) for rank in range(1, count + 1)]


class Command(BeaconsCommand):
    help = (
        "Fill the database with a realistic year of demo traffic (page views, custom events, errors). "
        "On a database that already has page view counts, say --reset (start over), --add (add on top) "
        "or --if-empty (do nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="delete every counter, single event and error group first"
        )
        parser.add_argument(
            "--add", action="store_true", help="add the demo traffic on top of the counts already there"
        )
        parser.add_argument("--if-empty", action="store_true", help="do nothing when page views already have counts")
        parser.add_argument(
            "--hits", type=whole_number(0), default=400_000, help="page views to generate (default 400,000)"
        )
        parser.add_argument("--identifiers", type=whole_number(1), default=200, help="distinct pages (default 200)")
        parser.add_argument("--days", type=whole_number(1), default=365, help="days of history up to now (default 365)")
        parser.add_argument("--errors", type=whole_number(0), default=300, help="JavaScript error events (default 300)")
        parser.add_argument(
            "--seed", type=whole_number(0), default=2026, help="random seed: the same seed gives the same data"
        )

    def handle(self, *args, reset, add, if_empty, hits, identifiers, days, errors, seed, **options):
        if sum([reset, add, if_empty]) > 1:
            raise CommandError("choose one of --reset, --add and --if-empty", returncode=2)
        started = time.monotonic()
        page_view, _ = BeaconDefinition.objects.get_or_create(
            slug="page_view",
            defaults={
                "name": "Page views",
                "kind": BeaconDefinition.Kind.PAGE_VIEW,
                "granularities": "M,H,D,MO,Y",
                "identifier_rule": BeaconDefinition.IdentifierRule.REFERER,
                "fine_retention_days": 2,
            },
        )
        BeaconDefinition.objects.get_or_create(
            slug="error",
            defaults={
                "name": "JavaScript errors",
                "kind": BeaconDefinition.Kind.ERROR,
                "granularities": "M,H,D,MO",
                "identifier_rule": BeaconDefinition.IdentifierRule.REFERER,
                "keep_raw": True,
            },
        )
        has_data = BeaconAggregate.objects.filter(definition=page_view).exists()
        if has_data and if_empty:
            self.stdout.write("beacons_demo: page views already have counts; nothing to do (use --reset to start over)")
            return
        if has_data and not (reset or add):
            raise CommandError(
                "page views already have counts: add --reset to delete every count, single event and error group "
                "first, or --add to add the demo traffic on top",
                returncode=2,
            )
        if reset:
            with transaction.atomic():
                deleted = rows_delete(BeaconAggregate.objects.all())
                BeaconEvent.objects.all().delete()
                ErrorGroup.objects.all().delete()
            self.stdout.write(
                f"beacons_demo: deleted {plural(deleted, 'counter row')}, all single events and error groups"
            )

        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:  # index pages stay in memory while millions of rows go in
                cursor.execute("PRAGMA cache_size = -262144")
        sites = demo_sites()
        rng = random.Random(seed)
        now = timezone.now()
        start = bucket_start(now - timedelta(days=days), G.HOUR)
        hour_weights = traffic_shape(start=start, now=now, rng=rng)
        pages = page_names(count=identifiers, rng=rng)
        shop_pages = [f"/shop{page}" for page in page_names(count=max(1, identifiers // 2), rng=rng)]
        rows = 0
        day_count = len({bucket_start(moment, G.DAY) for moment, _ in hour_weights})

        def progress(site: Site, definition: BeaconDefinition) -> Progress:
            label = f"writing {definition.name.lower()} of {site.domain}"
            return Progress(stream=self.stderr, unit="days", every=100, total=day_count, label=label)

        shop_errors = round(errors * SHOP_SHARE)  # the errors asked for, shared between the two sites
        plans = [
            (sites[0], pages, hits, errors - shop_errors),
            (sites[1], shop_pages, round(hits * SHOP_SHARE), shop_errors),
        ]
        with transaction.atomic():
            for site, site_pages, site_hits, _ in plans:
                with site_zone_active(site):  # the site's days, months and years
                    with progress(site, page_view) as shown:
                        rows += traffic_write(
                            site=site,
                            definition=page_view,
                            names=site_pages,
                            hits=site_hits,
                            hour_weights=hour_weights,
                            now=now,
                            rng=rng,
                            launched=(LAUNCHED_PAGE, now - timedelta(days=21))
                            if identifiers >= 20 and site == sites[0]
                            else None,
                            on_day=shown.update,
                        )
                    rows += visits_write(site=site, names=site_pages, page_view=page_view, now=now, rng=rng)
                    visitors_write(site=site, page_view=page_view, rng=rng)
                    for slug, name, description, share, names, property_keys in CUSTOM_TYPES:
                        definition, _ = BeaconDefinition.objects.get_or_create(
                            slug=slug,
                            defaults={
                                "name": name,
                                "description": description,
                                "kind": BeaconDefinition.Kind.CUSTOM,
                                "property_keys": property_keys,
                            },
                        )
                        if property_keys and not definition.property_keys:  # a demo type from before properties
                            definition.property_keys = property_keys
                            definition.save(update_fields=["property_keys"])
                        with progress(site, definition) as shown:
                            rows += traffic_write(
                                site=site,
                                definition=definition,
                                names=names,
                                hits=round(site_hits * share),
                                hour_weights=hour_weights,
                                now=now,
                                rng=rng,
                                on_day=shown.update,
                            )
            rows += flags_and_experiments_write(site=sites[0], now=now, rng=rng)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # fresh statistics, so the planner uses the right indexes at once
                cursor.execute(f"ANALYZE {BeaconAggregate._meta.db_table}")
        counted = 0
        with Progress(stream=self.stderr, unit="errors", every=100, total=errors, label="sending errors") as shown:
            for site, site_pages, _, site_errors in plans:
                counted += errors_send(
                    site=site,
                    count=site_errors,
                    now=now,
                    pages=site_pages[:40],
                    rng=rng,
                    on_error=shown.update,
                )
        self.stdout.write(
            f"beacons_demo: {plural(hits, 'page view')} over {plural(days, 'day')} and {plural(identifiers, 'page')} "
            f"on {sites[0].domain}, a quarter of that on {sites[1].domain}, "
            f"custom events and {plural(counted, 'error')}: {plural(rows, 'counter row')} written in "
            f"{duration(time.monotonic() - started)}"
        )


def demo_sites() -> tuple[Site, Site]:
    """The first site (created by the migrations; again here if a flush removed it) and the shop."""
    from beacons.domains import first_site_domain

    first = Site.objects.order_by("pk").first()
    if first is None:
        first = Site.objects.create(domain=first_site_domain(), name=first_site_domain())
    shop, _ = Site.objects.get_or_create(domain=SHOP_DOMAIN, defaults={"name": "Shop (demo)"})
    sites_cache_clear()
    return first, shop


def traffic_shape(*, start: datetime, now: datetime, rng: random.Random) -> list[tuple[datetime, float]]:
    """Relative traffic per hour from ``start`` up to the current hour (which counts only the
    part already elapsed): daily and weekly rhythm, steady growth, day-to-day noise, a few
    campaign spikes and a quiet end-of-year week."""
    tz = bucket_zone()
    current = bucket_start(now, G.HOUR)
    total_span = (current - start).total_seconds() or 1
    spikes = {rng.randrange(20, 360) for _ in range(4)}
    shape = []
    day_noise: dict = {}
    moment = start
    while moment <= current:
        local = moment.astimezone(tz)
        day = local.date()
        if day not in day_noise:
            age_days = (now.astimezone(tz).date() - day).days
            noise = max(0.5, rng.gauss(1, 0.1))
            if age_days in spikes:
                noise *= rng.uniform(1.8, 2.6)
            if (local.month, local.day) >= (12, 23) or (local.month, local.day) <= (1, 2):
                noise *= 0.55
            day_noise[day] = noise
        growth = 1 + 0.6 * (moment - start).total_seconds() / total_span
        weight = HOURLY[local.hour] * WEEKDAY[local.weekday()] * growth * day_noise[day]
        if moment == current:
            weight *= (now - current).total_seconds() / 3600
        shape.append((moment, weight))
        moment = bucket_after(moment, G.HOUR)
    return shape


def traffic_write(
    *,
    site: Site,
    definition: BeaconDefinition,
    names: list[str],
    hits: int,
    hour_weights: list[tuple[datetime, float]],
    now: datetime,
    rng: random.Random,
    launched: tuple[str, datetime] | None = None,
    on_day: Callable[[], None] | None = None,
) -> int:
    """Generate ``hits`` of ``site`` for ``definition`` spread over ``hour_weights`` and write every
    granularity it keeps, one local day at a time. Returns the counter rows written."""
    kept = set(definition.granularity_codes)
    fine = [g for g in (G.SECOND, G.MINUTE) if g in kept]
    fine_since = now - timedelta(days=min(FINE_DAYS, definition.fine_retention_days))
    coarse_rollups = [g for g in (G.MONTH, G.YEAR) if g in kept]
    per_identifier = definition.identifier_rule != BeaconDefinition.IdentifierRule.NONE
    before_launch = list(accumulate(zipf_weights(len(names))))
    after_launch = before_launch
    if launched and launched[0] not in names:
        names = [*names, launched[0]]
        weights = zipf_weights(len(names) - 1)
        after_launch = list(accumulate([*weights, weights[2] * 1.3]))  # straight into the top 3
        before_launch = [*before_launch, before_launch[-1]]  # no views before it existed

    total_weight = sum(weight for _, weight in hour_weights) or 1
    indexes = range(len(names))
    long_lived: Counter = Counter()  # month and year rows: small, written at the end
    day_rows: Counter = Counter()
    rows = 0
    expected = 0.0
    assigned = 0
    day = None

    # A definition without counters yet takes plain bulk inserts (COPY on PostgreSQL): every
    # key below is written once, so there is nothing to add to. Otherwise, the one upsert.
    new = not BeaconAggregate.objects.filter(site=site, definition=definition).exists()
    write = aggregates_insert_new if new else aggregates_add
    dimensions = {code: DIMENSION_VALUES[code] for code in definition.dimension_codes if code in DIMENSION_VALUES}
    dimension_granularities = definition.dimension_granularity_codes
    day_hits = 0

    def add_day_dimensions() -> None:
        """Share the day's hits among each dimension's values, per day, month and year (the demo keeps
        no hourly breakdowns)."""
        if not dimensions or not day_hits or day is None:
            return
        values = dimension_shares(dimensions=dimensions, hits=day_hits, rng=rng)
        by_day = [(g, bucket_start(day, g)) for g in dimension_granularities if g == G.DAY]
        by_month = [(g, bucket_start(day, g)) for g in dimension_granularities if g in (G.MONTH, G.YEAR)]
        increments_add_values(day_rows, site_id=site_id, definition_id=pk, buckets=by_day, values=values)
        increments_add_values(long_lived, site_id=site_id, definition_id=pk, buckets=by_month, values=values)

    def flush_day() -> int:
        nonlocal day_hits
        add_day_dimensions()
        day_hits = 0
        written = write(increments=day_rows)
        day_rows.clear()
        if on_day:
            on_day()
        return written

    last_hour = hour_weights[-1][0] if hour_weights else None
    pk, site_id = definition.pk, site.pk
    fine_from = bucket_start(fine_since, G.HOUR)
    for moment, weight in hour_weights:
        this_day = bucket_start(moment, G.DAY)
        if day is not None and this_day != day:
            rows += flush_day()
        day = this_day
        # Hits for this hour: cumulative rounding, so the hours add up to exactly ``hits``.
        expected += hits * weight / total_weight
        count = (hits if moment == last_hour else min(hits, round(expected))) - assigned
        assigned += count
        day_hits += count
        if not count:
            continue
        by_day = [(g, bucket_start(moment, g)) for g in (G.HOUR, G.DAY) if g in kept]
        by_month = [(g, bucket_start(moment, g)) for g in coarse_rollups]
        hits_by_identifier: dict = {"": count}
        if per_identifier:
            cum = after_launch if launched and moment >= launched[1] else before_launch
            hits_by_identifier = Counter(names[i] for i in rng.choices(indexes, cum_weights=cum, k=count))
        increments_add_hits(day_rows, site_id=site_id, definition_id=pk, buckets=by_day, hits=hits_by_identifier)
        increments_add_hits(long_lived, site_id=site_id, definition_id=pk, buckets=by_month, hits=hits_by_identifier)
        if fine and moment >= fine_from:
            # Each hit gets a random second of its hour (of the part elapsed, for the current hour).
            seconds = max(1, min(3600, int((now - moment).total_seconds()) + 1))
            for identifier, n in hits_by_identifier.items():
                for _ in range(n):
                    offset = rng.randrange(seconds)
                    # Hour starts are whole local minutes, so these are the second/minute bucket starts.
                    buckets = [
                        (g, moment + timedelta(seconds=offset if g == G.SECOND else offset - offset % 60)) for g in fine
                    ]
                    increments_add_hits(
                        day_rows, site_id=site_id, definition_id=pk, buckets=buckets, hits={identifier: 1}
                    )
    if day_rows:
        rows += flush_day()
    rows += write(increments=long_lived)
    return rows


# Visits: page views per visit and the share of bounces vary by the hour within these bounds.
VIEWS_PER_VISIT = (2.0, 2.8)
BOUNCE_RATE = (0.42, 0.58)
SECONDS_PER_LATER_VIEW = 55  # mean time between two page views of a visit (exponential)
ENTRY_PAGES = 15  # visits enter on the most popular pages (and exit on the top EXIT_PAGES)
EXIT_PAGES = 20
VISIT_DIMENSIONS = ("source", "device")
VISIT_DETAIL_DAYS = 35  # hour totals, and days of single pages and values: "Last 30 days" and shorter are complete


def visits_write(
    *, site: Site, names: list[str], page_view: BeaconDefinition, now: datetime, rng: random.Random
) -> int:
    """Visits of ``site`` made from its page views just written: each hour's page views (read back
    from their hour totals) are split into visits, so the page views inside visits equal the page
    views, with 40–60 % bounces and about a minute between two page views of a visit. Totals are
    written per day, month and year; visits, bounces, visit seconds and visit pages of each entry
    page (one of the ENTRY_PAGES most popular) and exits of each exit page per month and year.
    For the last VISIT_DETAIL_DAYS only, to keep ``make run`` quick: hour totals, and day counts
    of single pages and of the VISIT_DIMENSIONS' values (those are shared per month before); hour
    counts of single pages for the last FINE_DAYS, as page views' minutes.
    Returns the counter rows written."""
    from beacons.registry import VisitSlug, system_definitions_resolve

    definitions = system_definitions_resolve()
    hours = BeaconAggregate.objects.filter(
        site=site, definition=page_view, dimension="", identifier="", granularity=G.HOUR
    ).values_list("period_start", "count")
    new = not BeaconAggregate.objects.filter(site=site, definition__in=definitions.values()).exists()
    write = aggregates_insert_new if new else aggregates_add
    entry_cum = list(accumulate(zipf_weights(min(ENTRY_PAGES, len(names)), exponent=1.4)))
    exit_cum = list(accumulate(zipf_weights(min(EXIT_PAGES, len(names)))))
    detail_since = bucket_start(now - timedelta(days=VISIT_DETAIL_DAYS), G.DAY)
    increments: Counter = Counter()
    shared: dict[tuple, Counter] = {}  # buckets -> {slug: total}, shared among the values
    # Visits are made per day, and per hour over the last FINE_DAYS (whose hours keep single pages).
    units: dict[datetime, list[tuple[datetime, int]]] = {}  # day or hour -> its hours' page views
    hourly_since = bucket_start(now - timedelta(days=FINE_DAYS), G.DAY)
    for moment, views in hours.order_by("period_start").iterator():
        units.setdefault(moment if moment >= hourly_since else bucket_start(moment, G.DAY), []).append((moment, views))
    for unit, day_hours in units.items():
        day, hourly = bucket_start(unit, G.DAY), unit >= hourly_since
        views = sum(n for _, n in day_hours)
        visits = min(views, max(1, round(views / rng.uniform(*VIEWS_PER_VISIT))))
        bounces = max(round(visits * rng.uniform(*BOUNCE_RATE)), 2 * visits - views)
        if views > visits:  # some visit must take the page views beyond one each
            bounces = min(bounces, visits - 1)
        # The first ``bounces`` visits have one page view; the others two, and the rest go to them at random.
        entries = [names[i] for i in rng.choices(range(len(entry_cum)), cum_weights=entry_cum, k=visits)]
        longer = entries[bounces:]
        extra = Counter(rng.choices(longer, k=views - bounces - 2 * len(longer))) if longer else Counter()
        later_views = Counter(longer) + extra  # page views after the first, by entry page
        exits = [names[i] for i in rng.choices(range(len(exit_cum)), cum_weights=exit_cum, k=len(longer))]
        noise = rng.uniform(0.7, 1.3)
        figures = {
            VisitSlug.VISITS: Counter(entries),
            VisitSlug.BOUNCES: Counter(entries[:bounces]),
            VisitSlug.PAGES: Counter(entries) + later_views,
            VisitSlug.SECONDS: Counter(
                {page: round(n * SECONDS_PER_LATER_VIEW * noise) for page, n in later_views.items()}
            ),
            VisitSlug.EXITS: Counter(entries[:bounces]) + Counter(exits),
        }
        month, year = bucket_start(day, G.MONTH), bucket_start(day, G.YEAR)
        recent = day >= detail_since
        for slug, by_page in figures.items():
            pk, total = definitions[slug].pk, sum(by_page.values())
            if not total:
                continue
            buckets = [(G.DAY, day), (G.MONTH, month), (G.YEAR, year)] if recent else [(G.MONTH, month), (G.YEAR, year)]
            if hourly:
                buckets.append((G.HOUR, unit))
            increments_add_hits(increments, site_id=site.pk, definition_id=pk, buckets=buckets, hits=+by_page)
            if not recent:
                increments[(site.pk, pk, "", "", G.DAY, day)] += total
            elif not hourly:  # hour totals: the day's shared by its hours' page views, adding up to it
                expected, assigned = 0.0, 0
                for moment, n in day_hours:
                    expected += total * n / views
                    increments[(site.pk, pk, "", "", G.HOUR, moment)] += round(expected) - assigned
                    assigned = round(expected)
            if slug != VisitSlug.EXITS:  # a recent day's values add up to its month's and year's
                coarse = ((G.MONTH, month), (G.YEAR, year))
                shared.setdefault(((G.DAY, day), *coarse) if recent else coarse, Counter())[slug] += total
    dimensions = {code: DIMENSION_VALUES[code] for code in VISIT_DIMENSIONS}
    for buckets, totals in shared.items():
        for slug, n in totals.items():
            values = dimension_shares(dimensions=dimensions, hits=n, rng=rng)
            pk = definitions[slug].pk
            increments_add_values(increments, site_id=site.pk, definition_id=pk, buckets=buckets, values=values)
    return write(increments={key: n for key, n in increments.items() if n})


def dimension_shares(
    *, dimensions: dict[str, list[tuple[str | None, float]]], hits: int, rng: random.Random
) -> Counter[tuple[str, str]]:
    """``hits`` shared among each dimension's values by weight, each weight varied a little (±15%)
    per call; the shares of one dimension add up to ``hits`` (those of ``None``, no value, are
    left out). {(dimension, value): hits}."""
    shares: Counter[tuple[str, str]] = Counter()
    for code, weighted in dimensions.items():
        weights = [weight * rng.uniform(0.85, 1.15) for _, weight in weighted]
        total = sum(weights)
        expected, assigned = 0.0, 0  # whole hits: PostgreSQL's COPY refuses "37.0" for a count
        for (value, _), weight in zip(weighted, weights):
            expected += hits * weight / total
            n = round(expected) - assigned
            assigned += n
            if n and value is not None:
                shares[(code, value)] += n
    return shares


def errors_send(
    *,
    site: Site,
    count: int,
    now: datetime,
    pages: list[str],
    rng: random.Random,
    on_error: Callable[[], None] | None = None,
) -> int:
    """Send ``count`` JavaScript errors of ``site`` from the last two weeks through the ingest path."""
    kinds = [entry[1:] for entry in ERRORS]
    weights = [entry[0] for entry in ERRORS]
    moments = sorted(now - timedelta(seconds=rng.triangular(0, 14 * 86400, 0)) for _ in range(count))
    counted = 0
    with alerts_suppressed():
        for moment in moments:
            message, function, file, line = rng.choices(kinds, weights=weights)[0]
            page = rng.choice(pages)
            column = rng.randint(5, 40)
            meta = {
                "message": message,
                "source": f"https://www.example.com{file}",
                "line": line,
                "col": column,
                "stack": f"{message}\n    at {function} (https://www.example.com{file}:{line}:{column})\n"
                f"    at HTMLDocument.<anonymous> (https://www.example.com/static/js/main.js:4:9)",
            }
            counted += events_record(
                events=[EventInput(event_type="error", identifier=page, meta=meta)],
                context=RequestContext(site_id=site.pk, received_at=moment, user_agent=UA, referer="", source="demo"),
            )
            if on_error:
                on_error()
        get_sink().flush()  # a buffering sink (memory/redis) must not hold demo counts back
    return counted


RETURNING_SHARE = 0.3  # of a day's visitors, who came on another day too
SIGNED_IN_SHARE = 0.14  # of a day's visitors, signed-in users (the identity counters' share)
USERS = 600  # signed-in users: the same visitor on every day they come
VIEWS_PER_PAGE_VISITOR = 1.3  # a page's views per visitor of it, in a day or month


def visitors_write(*, site: Site, page_view: BeaconDefinition, rng: random.Random) -> int:
    """Visitor sketches of ``site``'s page views just written: each day's unique visitors (from its
    page-view total, about two page views a visitor, a share of them returning from other days and
    a share signed-in users, the same on every day) as the site total per day and per month, per
    hour where hours are counted (each visitor in one hour of its day, by the hours' page views),
    and per minute where minutes are; signed-in and anonymous visitors per day and month; and each
    page's and dimension value's visitors per day and month where their counters are (drawn from
    the day's or month's visitors: a value's share of them by its page views, a page's about one
    per VIEWS_PER_PAGE_VISITOR of its views). Returns the
    sketches written."""
    totals = BeaconAggregate.objects.filter(site=site, definition=page_view, dimension="", identifier="")
    hours_of_day: dict[datetime, list[tuple[datetime, int]]] = {}
    for hour, views in totals.filter(granularity=G.HOUR).values_list("period_start", "count").iterator():
        hours_of_day.setdefault(bucket_start(hour, G.DAY), []).append((hour, views))
    returning = [rng.getrandbits(63) for _ in range(2000)]
    users = [rng.getrandbits(63) for _ in range(USERS)]
    months: dict[datetime, object] = {}
    hour_sketches: dict[datetime, object] = {}
    tokens_of: dict[tuple[str, datetime], list[int]] = {}  # (granularity, bucket) -> its visitors
    identity: dict[tuple[str, str, datetime], object] = {}  # (value, granularity, bucket) -> sketch
    rows = []
    for day, views in totals.filter(granularity=G.DAY).values_list("period_start", "count").order_by("period_start"):
        sketch = sketch_new()
        month_start = bucket_start(day, G.MONTH)
        month = months.setdefault(month_start, sketch_new())
        hours = hours_of_day.get(day, [])
        day_tokens = tokens_of.setdefault((G.DAY, day), [])
        month_tokens = tokens_of.setdefault((G.MONTH, month_start), [])
        # fewer visitors than visits: the most page views a visit has, 1.05-1.25 visits a visitor
        for _ in range(max(1, round(views / (VIEWS_PER_VISIT[1] * rng.uniform(1.05, 1.25))))):
            signed_in = rng.random() < SIGNED_IN_SHARE
            if signed_in:
                token = rng.choice(users)
            else:
                token = rng.choice(returning) if rng.random() < RETURNING_SHARE else rng.getrandbits(63)
            sketch.update(token)
            month.update(token)
            day_tokens.append(token)
            month_tokens.append(token)
            value = SIGNED_IN if signed_in else ANONYMOUS
            for granularity, start in ((G.DAY, day), (G.MONTH, month_start)):
                identity.setdefault((value, granularity, start), sketch_new()).update(token)
            if hours:
                hour = rng.choices(hours, weights=[n for _, n in hours])[0][0]
                hour_sketches.setdefault(hour, sketch_new()).update(token)
        rows.append(("", "", G.DAY, day, sketch))
    rows += [("", "", G.MONTH, month_start, sketch) for month_start, sketch in months.items()]
    rows += [("", "", G.HOUR, hour, sketch) for hour, sketch in hour_sketches.items()]
    rows += [(IDENTITY, value, granularity, start, sketch) for (value, granularity, start), sketch in identity.items()]
    minutes = totals.filter(granularity=G.MINUTE).values_list("period_start", "count")
    for minute, views in minutes.iterator():  # "live now": each minute's visitors, most reading one page
        rows.append(
            ("", "", G.MINUTE, minute, sketch_of(rng.getrandbits(63) for _ in range(max(1, round(views / 1.2)))))
        )
    values = (
        BeaconAggregate.objects.filter(site=site, definition=page_view, granularity__in=[G.DAY, G.MONTH])
        .exclude(dimension="", identifier="")
        .exclude(dimension=IDENTITY)
        .values_list("dimension", "identifier", "granularity", "period_start", "count")
    )
    views_of = dict(
        ((granularity, start), n)
        for granularity, start, n in totals.filter(granularity__in=[G.DAY, G.MONTH]).values_list(
            "granularity", "period_start", "count"
        )
    )
    for dimension, value, granularity, start, views in values.iterator():
        tokens = tokens_of.get((granularity, start))
        if not tokens or views <= 0:
            continue
        if dimension:  # each visitor has one value: the value's share of the page views
            wanted = round(len(tokens) * views / max(views, views_of.get((granularity, start), views)))
        else:  # a visitor reads several pages
            wanted = round(views / VIEWS_PER_PAGE_VISITOR)
        chosen = rng.sample(tokens, min(len(tokens), max(1, wanted)))
        rows.append((dimension, value, granularity, start, sketch_of(chosen)))
    VisitorSketch.objects.filter(site=site, definition=page_view).delete()
    VisitorSketch.objects.bulk_create(
        (
            VisitorSketch(
                site=site,
                definition=page_view,
                dimension=dimension,
                identifier=value,
                granularity=granularity,
                period_start=start,
                sketch=sketch_dump(sketch),
            )
            for dimension, value, granularity, start, sketch in rows
        ),
        batch_size=2000,
    )
    return len(rows)


# Demo experiment: (variation key, name, weight, config, units exposed, sign-up rate, download rate).
SIGNUP_EXPERIMENT = (
    ("control", "Sign up", 50, {"label": "Sign up"}, 4210, 0.100, 0.21),
    ("b", "Start free", 50, {"label": "Start free"}, 4187, 0.115, 0.20),
)


def flags_and_experiments_write(*, site: Site, now: datetime, rng: random.Random) -> int:
    """The demo's flags (a banner the kill switch hides, a targeted rollout, a three-way split) and
    experiments (one running with two weeks of exposures and conversions, one concluded, one draft).
    Idempotent: the same keys are updated, a running experiment's units are written once."""
    banner, _ = Flag.objects.update_or_create(
        site=site,
        key="demo-banner",
        defaults={"description": "The banner on the demo pages: switch it off in the admin.", "default_value": True},
    )
    checkout, _ = Flag.objects.update_or_create(
        site=site,
        key="new-checkout",
        defaults={"description": "The new checkout: German-speaking countries first, then 30 % of everyone."},
    )
    if not checkout.rules.exists():
        FlagRule.objects.create(
            flag=checkout, position=0, attribute="country", operator="in", value="DE, AT, CH", serve=True
        )
        FlagRule.objects.create(flag=checkout, position=1, attribute="", serve=True, rollout=30)
    Flag.objects.update_or_create(
        site=site,
        key="button-colour",
        defaults={
            "description": "A three-way split of the buttons' colour.",
            "default_value": "blue",
            "variations": ["blue", "green", "orange"],
            "weights": [50, 25, 25],
        },
    )
    signup, _ = Experiment.objects.update_or_create(
        site=site,
        key="signup-button",
        defaults={
            "name": "Sign-up button wording",
            "hypothesis": "“Start free” says there is nothing to pay, so more visitors sign up.",
            "status": Experiment.Status.RUNNING,
            "primary_metric": "signup",
            "secondary_metrics": "download_click",
            "started_at": now - timedelta(days=14),
        },
    )
    for position, (key, name, weight, config, *_) in enumerate(SIGNUP_EXPERIMENT):
        ExperimentVariation.objects.update_or_create(
            experiment=signup,
            key=key,
            defaults={"position": position, "name": name, "weight": weight, "config": config},
        )
    written = 0
    if not signup.exposures.exists():
        exposures, conversions = [], []
        for index, (_key, _name, _weight, _config, units, signup_rate, download_rate) in enumerate(SIGNUP_EXPERIMENT):
            for number in range(units):
                unit = f"demo{index}x{number:06d}".ljust(22, "0")
                seen = now - timedelta(seconds=rng.uniform(0, 14 * 86400))
                exposures.append(ExperimentExposure(experiment=signup, unit=unit, variation=index, first_seen=seen))
                for metric, rate in (("signup", signup_rate), ("download_click", download_rate)):
                    if rng.random() < rate:
                        conversions.append(
                            ExperimentConversion(
                                experiment=signup,
                                unit=unit,
                                metric=metric,
                                variation=index,
                                count=1 + (rng.random() < 0.2),
                                value_sum=0,
                                first_at=seen,
                            )
                        )
        for number in range(37):  # units that reported both variations: left out of the results
            exposures.append(
                ExperimentExposure(
                    experiment=signup,
                    unit=f"demo9x{number:06d}".ljust(22, "0"),
                    variation=0,
                    conflicted=True,
                    first_seen=now,
                )
            )
        ExperimentExposure.objects.bulk_create(exposures, batch_size=2000)
        ExperimentConversion.objects.bulk_create(conversions, batch_size=2000)
        written = len(exposures) + len(conversions)
    pricing, _ = Experiment.objects.update_or_create(
        site=site,
        key="pricing-layout",
        defaults={
            "name": "Pricing page layout",
            "hypothesis": "Three columns read faster than a long list.",
            "status": Experiment.Status.CONCLUDED,
            "primary_metric": "signup",
            "started_at": now - timedelta(days=60),
            "stopped_at": now - timedelta(days=30),
        },
    )
    for position, key in enumerate(("list", "columns")):
        ExperimentVariation.objects.update_or_create(
            experiment=pricing,
            key=key,
            defaults={"position": position, "name": key.title(), "weight": 50, "config": {"layout": key}},
        )
    pricing.winner = pricing.variations.get(key="columns")
    pricing.save(update_fields=["winner"])
    tour, _ = Experiment.objects.update_or_create(
        site=site,
        key="onboarding-tour",
        defaults={
            "name": "Onboarding tour",
            "status": Experiment.Status.DRAFT,
            "primary_metric": "signup",
            "unit": Experiment.Unit.USER,
        },
    )
    for position, key in enumerate(("none", "tour")):
        ExperimentVariation.objects.update_or_create(
            experiment=tour, key=key, defaults={"position": position, "name": key.title(), "weight": 50}
        )
    return written
