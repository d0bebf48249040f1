"""The stats API's HTTP surface (django-ninja): ``POST /api/v1/query`` and the GET wrappers over it,
key auth, the per-key rate limit, JSON errors and CSV answers.

Every endpoint parses, checks the key and the site, calls ``query.query_answer`` (or, for
realtime, ``counters.live_count`` as the dashboard's live card does) and renders JSON or CSV.
Errors are ``{"error": ..., "field": ...}`` as at ingest: 400 malformed, 401 no or bad key, 403 a
site outside the key's scope (or unknown: the answer does not tell which), 413 body too large,
429 over the key's per-minute limit (with ``Retry-After``). Never a 500 for any input.
"""

from datetime import date
from typing import Annotated, Any, Literal

import pydantic
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, NinjaAPI, Path, Query, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.security import HttpBearer
from pydantic import ConfigDict

from beacons.api import keys
from beacons.api.query import (
    DATE_RANGES,
    MAX_ROWS,
    METRICS,
    TIME_DIMENSIONS,
    QueryError,
    Question,
    definition_checked,
    query_answer,
)
from beacons.counting.buckets import site_zone_active
from beacons.downloads import csv_response
from beacons.ingest.parsing import json_parse, nesting_within
from beacons.limits import minute_count_add
from beacons.models import ApiKey, Site
from beacons.queries import counters

MAX_BODY_BYTES = 16_384
MAX_JSON_DEPTH = 6
LIVE_MINUTES = 5  # as the dashboard's live card


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str = "", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers or {}


class BoundedJSONParser(Parser):
    """JSON only (no NaN or Infinity), nested at most ``MAX_JSON_DEPTH`` deep; the size was checked
    before (``KeyAuth``)."""

    def parse_body(self, request: HttpRequest):
        try:
            data = json_parse(request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ApiError(400, "the body is not JSON", "body") from None
        if not nesting_within(data, limit=MAX_JSON_DEPTH):
            raise ApiError(400, f"the body is nested more than {MAX_JSON_DEPTH} levels deep", "body")
        if not isinstance(data, dict):
            raise ApiError(400, "the body must be a JSON object", "body")
        return data


class KeyAuth(HttpBearer):
    """``Authorization: Bearer <key>``: an active key, within its per-minute limit. Refuses an
    over-large body first, before anything is read."""

    def __call__(self, request: HttpRequest):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes", "body")
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        api_key = keys.api_key_found(token)
        if api_key is None:
            return None
        now = timezone.now()
        limit = settings.BEACONS_API_RATE_PER_MINUTE
        if limit:
            used = minute_count_add(key=f"api-key:{api_key.pk}", amount=1, at=now)
            if used is not None and used > limit:
                retry = 60 - now.second
                raise ApiError(
                    429, f"more than {limit} requests a minute with this key", "key", {"Retry-After": str(retry)}
                )
        keys.api_key_used(api_key=api_key, at=now)
        return api_key


class StatsApi(NinjaAPI):
    def create_response(self, request, data, *, status=None, temporal_response=None):
        response = super().create_response(request, data, status=status, temporal_response=temporal_response)
        response["Cache-Control"] = "private, no-store"
        return response


api = StatsApi(
    title="Beacons stats API",
    version="1",
    description="Read the counts of the sites an API key is scoped to. Every figure is the dashboard's figure "
    "for the same question. Authenticate with `Authorization: Bearer <key>` (keys are made by staff in the admin).",
    auth=KeyAuth(),
    parser=BoundedJSONParser(),
    renderer=JSONRenderer(),
    urls_namespace="api_v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def _error(request, status: int, message: str, field: str = "", headers: dict | None = None) -> HttpResponse:
    response = api.create_response(request, {"error": message, "field": field}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return _error(request, exc.status, exc.message, exc.field, exc.headers)


@api.exception_handler(QueryError)
def _query_error(request, exc: QueryError):
    return _error(request, 400, exc.message, exc.field)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return _error(
        request,
        401,
        "send a valid, active API key as Authorization: Bearer <key>",
        "key",
        {"WWW-Authenticate": "Bearer"},
    )


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    first = exc.errors[0] if exc.errors else {}
    # pydantic names the branch of a union in the location ("date_range.literal['day',…]"): not a field
    location = [
        str(part)
        for part in first.get("loc", ())
        if part not in ("body", "query", "path", "payload") and "[" not in str(part)
    ]
    field = ".".join(location)
    message = str(first.get("msg", "invalid"))[:200]
    return _error(request, 400, f"{field}: {message}" if field else message, field)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if isinstance(exc.__cause__, ApiError):  # ninja wraps what the body parser raises
        return _api_error(request, exc.__cause__)
    return _error(request, exc.status_code, str(exc)[:200], "body" if exc.status_code == 400 else "")


# --- schemas ---------------------------------------------------------------------------------------

DateRangeName = Literal[tuple(DATE_RANGES)]
ShortText = Annotated[str, Field(max_length=64)]
FilterValue = Annotated[str, Field(max_length=256)]


class Include(Schema):
    model_config = ConfigDict(extra="forbid")
    comparison: Literal["previous_period"] | None = Field(
        None, description="`previous_period`: each row also gets the figures of the period before and the change."
    )


class QueryIn(Schema):
    model_config = ConfigDict(extra="forbid")
    site: Annotated[str, Field(max_length=253, description="The site's domain, e.g. `shop.example.com`.")]
    metrics: Annotated[
        list[ShortText],
        Field(
            min_length=1,
            max_length=10,
            description=f"Of: {', '.join(METRICS)}. (visitors, visits, bounce_rate, visit_duration, views_per_visit: "
            "400 until they are counted.)",
        ),
    ]
    date_range: DateRangeName | Annotated[list[date], Field(min_length=2, max_length=2)] = Field(
        "30d",
        description="A period as the dashboard means it (`day` is today so far, `7d` today and the 6 days before, "
        "`12mo` this month and the 11 before, `all` from the first counted day), or `[from, to]`, both days included.",
    )
    dimensions: Annotated[list[ShortText], Field(max_length=3)] = Field(
        default_factory=list,
        description="`time:hour|day|month`, or one of `event:page`, `event:type`, `visit:source`, `visit:utm_medium`, "
        "`visit:utm_campaign`, `visit:browser`, `visit:os`, `visit:device`, `visit:country`, `event:props:<key>`.",
    )
    filters: Annotated[
        list[tuple[ShortText, ShortText, Annotated[list[FilterValue], Field(max_length=100)]]], Field(max_length=5)
    ] = Field(
        default_factory=list,
        description='`["is", "visit:source", ["Google"]]`: one value of one dimension (or, on the breakdown\'s own '
        "dimension, the rows to keep).",
    )
    order_by: Annotated[list[tuple[ShortText, Literal["asc", "desc"]]], Field(max_length=5)] | None = None
    limit: int = Field(MAX_ROWS, ge=1, le=MAX_ROWS)
    offset: int = Field(0, ge=0, le=1_000_000)
    include: Include | None = None
    event_type: ShortText = Field("page_view", description="The event type `events` counts (default: page views).")


class ComparisonOut(Schema):
    dimensions: list[str]
    metrics: list[int | float | None]
    change: list[int | None] = Field(description="Change on the period before, in whole percent (null: it had none).")


class ResultOut(Schema):
    dimensions: list[str]
    metrics: list[int | float | None] = Field(description="Counts are whole; rates have two decimals; null: no visits.")
    comparison: ComparisonOut | None = None


class QueryOut(Schema):
    results: list[ResultOut]
    meta: dict[str, Any]
    query: dict[str, Any]


class ErrorOut(Schema):
    error: str
    field: str


class RealtimeOut(Schema):
    site: str
    event_type: str
    events: int | None = Field(description="Hits in the last 5 minutes (null: the type keeps no minute counts).")
    minutes: int


ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 413: ErrorOut, 429: ErrorOut}


# --- endpoints --------------------------------------------------------------------------------------


def _site(request, domain: str) -> Site:
    site = keys.site_readable(api_key=request.auth, domain=domain)
    if site is None:
        raise ApiError(403, f"this key may not read the site {domain[:253]!r}", "site")
    return site


def _answer(request, body: QueryIn, *, name: str, site: Site | None = None):
    question = Question(
        site=site or _site(request, body.site),
        metrics=body.metrics,
        date_range=tuple(body.date_range) if isinstance(body.date_range, list) else body.date_range,
        dimensions=body.dimensions,
        filters=[tuple(f) for f in body.filters],
        order_by=[tuple(o) for o in body.order_by] if body.order_by else None,
        limit=body.limit,
        offset=body.offset,
        compare=bool(body.include and body.include.comparison),
        event_type=body.event_type,
    )
    with site_zone_active(question.site):  # the presets' days and the buckets are the site's
        answer = query_answer(question, now=timezone.now())
    if _wants_csv(request):
        return _csv(rows=_csv_rows(answer), filename=f"beacons-{question.site.domain}-{name}.csv")
    return answer


def _wants_csv(request) -> bool:
    return request.GET.get("format") == "csv" or "text/csv" in request.headers.get("Accept", "")


def _csv(*, rows, filename: str) -> HttpResponse:
    response = csv_response(rows=rows, filename=filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _csv_rows(answer: dict) -> list[list]:
    query = answer["query"]
    compare = query["include"]["comparison"] is not None
    header = [*query["dimensions"], *query["metrics"]]
    if compare:
        header += [f"{m} (period before)" for m in query["metrics"]] + [f"{m} change (%)" for m in query["metrics"]]
    rows = [header]
    for result in answer["results"]:
        row = [*result["dimensions"], *result["metrics"]]
        if compare:
            row += [("" if v is None else v) for v in result["comparison"]["metrics"] + result["comparison"]["change"]]
        rows.append(row)
    return rows


@api.post("/query", response={200: QueryOut, **ERRORS}, summary="Ask any question (Plausible Stats API v2 shape)")
def query(request, body: QueryIn):
    """Metrics over a period, optionally broken down by one dimension (or by time) and filtered by one
    dimension value. CSV with `Accept: text/csv` or `?format=csv`."""
    return _answer(request, body, name="query")


Period = Annotated[DateRangeName, Query(description="As `date_range`.")]
Metrics = Annotated[str, Query(max_length=200, description="Comma-separated metrics.")]
EventType = Annotated[str, Query(max_length=64)]
Compare = Annotated[Literal["previous_period"] | None, Query(description="`previous_period` adds the change.")]
Format = Annotated[Literal["json", "csv"] | None, Query(alias="format")]
Domain = Annotated[str, Path(max_length=253)]


def _metrics(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or len(names) > 10:
        raise ApiError(400, "metrics: name 1 to 10 metrics, comma-separated", "metrics")
    return names


def _wrapped(request, domain: str, *, name: str, **fields):
    """A GET wrapper's answer: the same ``QueryIn`` as the POST, with the site from the path."""
    site = _site(request, domain)
    try:
        body = QueryIn(site=site.domain, **fields)
    except pydantic.ValidationError as problem:  # the same 400 as a bad POST body
        raise ValidationError(problem.errors()) from None
    return _answer(request, body, name=name, site=site)


@api.get("/sites/{domain}/summary", response={200: QueryOut, **ERRORS}, summary="Totals of a period")
def summary(
    request,
    domain: Domain,
    period: Period = "30d",
    metrics: Metrics = "events",
    event_type: EventType = "page_view",
    compare: Compare = None,
    format: Format = None,
):
    return _wrapped(
        request,
        domain,
        name="summary",
        metrics=_metrics(metrics),
        date_range=period,
        event_type=event_type,
        include={"comparison": compare},
    )


@api.get("/sites/{domain}/timeseries", response={200: QueryOut, **ERRORS}, summary="A metric per hour, day or month")
def timeseries(
    request,
    domain: Domain,
    period: Period = "30d",
    interval: Literal["hour", "day", "month"] = "day",
    metrics: Metrics = "events",
    event_type: EventType = "page_view",
    compare: Compare = None,
    format: Format = None,
):
    return _wrapped(
        request,
        domain,
        name="timeseries",
        metrics=_metrics(metrics),
        date_range=period,
        dimensions=[f"time:{interval}"],
        event_type=event_type,
        include={"comparison": compare},
    )


@api.get(
    "/sites/{domain}/breakdown/{dimension}",
    response={200: QueryOut, **ERRORS},
    summary="The values of one dimension, most counted first",
)
def breakdown(
    request,
    domain: Domain,
    dimension: Annotated[str, Path(max_length=64, description="e.g. `visit:source`, `event:page`, `event:props:plan`")],
    period: Period = "30d",
    metrics: Metrics = "events",
    event_type: EventType = "page_view",
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    compare: Compare = None,
    format: Format = None,
):
    if dimension in TIME_DIMENSIONS:
        raise ApiError(400, "dimension: ask a time dimension from /timeseries", "dimension")
    return _wrapped(
        request,
        domain,
        name="breakdown",
        metrics=_metrics(metrics),
        date_range=period,
        dimensions=[dimension],
        event_type=event_type,
        limit=limit,
        offset=offset,
        include={"comparison": compare},
    )


@api.get("/sites/{domain}/realtime", response={200: RealtimeOut, **ERRORS}, summary="Hits in the last 5 minutes")
def realtime(request, domain: Domain, event_type: EventType = "page_view", format: Format = None):
    """The dashboard's *live now*: hits of the type in the last 5 minutes, the current one included."""
    site = _site(request, domain)
    definition = definition_checked(event_type)
    count = counters.live_count(site=site, definitions=[definition], minutes=LIVE_MINUTES)
    answer = {"site": site.domain, "event_type": definition.slug, "events": count, "minutes": LIVE_MINUTES}
    if _wants_csv(request):
        rows = [
            ["event_type", f"events in the last {LIVE_MINUTES} minutes"],
            [definition.slug, "" if count is None else count],
        ]
        return _csv(rows=rows, filename=f"beacons-{site.domain}-realtime.csv")
    return answer
