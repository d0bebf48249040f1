"""Turn an ingest request body into validated events, or a clear rejection.

Nothing here touches the database. Every problem becomes ``Rejected`` with the HTTP
status, a message and the field it is about; a batch is validated whole and lists each
bad event by index.
"""

import json
import math
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from django.conf import settings
from django.http import QueryDict
from django.http.multipartparser import MultiPartParser

from beacons.ingest.extraction import CAMPAIGN_PARAMETERS, REFERRER_MAX_LENGTH, clean_text, property_value
from beacons.registry import RESERVED_PREFIX, InvalidName, event_type_normalise, identifier_check, is_reserved
from beacons.text import is_storable_json, is_storable_text

EVENT_ID_MAX_LENGTH = 128


class Rejected(Exception):
    def __init__(self, status: int, error: str, field: str | None = None, errors: list | None = None):
        super().__init__(error)
        self.status, self.error, self.field, self.errors = status, error, field, errors

    def as_json(self) -> dict:
        body: dict[str, Any] = {"error": self.error}
        if self.field:
            body["field"] = self.field
        if self.errors:
            body["errors"] = self.errors
        return body


@dataclass
class EventInput:
    event_type: str
    identifier: str | None = None  # None: not sent, derive it by the definition's rule
    meta: dict = field(default_factory=dict)
    event_id: str | None = None
    referrer: str = ""  # the page's document.referrer, for the source dimension; "" when not sent
    campaign: dict[str, str] = field(default_factory=dict)  # utm_source, utm_medium, utm_campaign, ref


class _Invalid(Exception):
    def __init__(self, field: str, error: str):
        super().__init__(error)
        self.field, self.error = field, error


def normalise_event_type(value: Any) -> str:
    if value is None:
        raise _Invalid("event_type", "event_type is required")
    if not isinstance(value, str):
        raise _Invalid("event_type", "event_type must be a string")
    try:
        slug = event_type_normalise(value)
    except InvalidName as problem:
        raise _Invalid("event_type", f"event_type {problem}") from None
    if is_reserved(slug):
        raise _Invalid("event_type", f"event_type may not start with {RESERVED_PREFIX!r}: Beacons counts those itself")
    return slug


def normalise_identifier(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Invalid("identifier", "identifier must be a string")
    try:
        return identifier_check(str(value).strip()) or None
    except InvalidName as problem:
        raise _Invalid("identifier", f"identifier {problem}") from None


class _NotJSONNumber(ValueError):
    pass


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 parses as inf, which no JSON column can store
        raise _NotJSONNumber(f"{text} is out of range")
    return number


def _refuse_constant(name: str) -> None:
    raise _NotJSONNumber(f"{name} is not a JSON number")


# One decoder: json.loads with hooks builds a new one (and its scanner) per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def json_parse(text: str) -> Any:
    """``json.loads`` without Python's extensions: NaN, Infinity and overflowing floats are
    refused (``_NotJSONNumber``, a ValueError), as the databases' JSON columns refuse them."""
    return _DECODER.decode(text)


def nesting_within(value: Any, *, limit: int) -> bool:
    """True when ``value`` nests at most ``limit`` containers deep (``{}`` is 1, a scalar 0).

    Iterative, and it stops at the first container too deep, so it is safe on any parsed
    document: it runs before anything that walks a value recursively."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def _nesting_check(value: Any, *, field: str) -> None:
    limit = settings.BEACONS_MAX_JSON_DEPTH
    if not nesting_within(value, limit=limit):
        raise _Invalid(field, f"{field} is nested more than {limit} levels deep")


def normalise_meta(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):  # form posts carry meta as a JSON string
        try:
            value = json_parse(value) if value.strip() else {}
        except _NotJSONNumber as problem:
            raise _Invalid("meta", f"meta is not valid JSON: {problem}") from None
        except (ValueError, RecursionError):
            raise _Invalid("meta", "meta is not valid JSON") from None
    _nesting_check(value, field="meta")
    if not isinstance(value, dict):
        raise _Invalid("meta", "meta must be a JSON object")
    if not is_storable_json(value):
        raise _Invalid("meta", "meta contains a NUL character or invalid Unicode")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > settings.BEACONS_MAX_META_BYTES:
        raise _Invalid("meta", f"meta is {size} bytes; the limit is {settings.BEACONS_MAX_META_BYTES}")
    return value


def normalise_event_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Invalid("id", "id must be a string")
    text = str(value).strip()
    if len(text) > EVENT_ID_MAX_LENGTH:
        raise _Invalid("id", f"id is longer than {EVENT_ID_MAX_LENGTH} characters")
    if not is_storable_text(text):
        raise _Invalid("id", "id contains a NUL character or invalid Unicode")
    return text or None


def normalise_referrer(data: dict) -> str:
    """``referrer`` (or Plausible's ``r``) as clean text cut to REFERRER_MAX_LENGTH; anything
    but text is dropped. These fields only refine a breakdown: a bad one never costs the hit."""
    value = data.get("referrer", data.get("r"))
    return clean_text(value, limit=REFERRER_MAX_LENGTH) if isinstance(value, str) else ""


def normalise_campaign(data: dict) -> dict[str, str]:
    """The campaign parameters sent beside the event, each a dimension value (clean text cut to
    120 characters); absent, blank, or not text or a number: left out."""
    values = {name: property_value(data.get(name)) for name in CAMPAIGN_PARAMETERS}
    return {name: value for name, value in values.items() if value}


def event_from_mapping(data: Any, *, event_type: str | None = None, identifier: str | None = None) -> EventInput:
    """Validate one event object; ``event_type``/``identifier`` from the URL win over the body."""
    if not isinstance(data, dict):
        raise _Invalid("event", "each event must be a JSON object")
    return EventInput(
        event_type=normalise_event_type(event_type if event_type is not None else data.get("event_type")),
        identifier=normalise_identifier(identifier if identifier is not None else data.get("identifier")),
        meta=normalise_meta(data.get("meta")),
        event_id=normalise_event_id(data.get("id")),
        referrer=normalise_referrer(data),
        campaign=normalise_campaign(data),
    )


def _decode_json(raw: bytes) -> Any:
    try:
        data = json_parse(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Rejected(400, "body is not UTF-8 text", "body") from None
    except _NotJSONNumber as problem:
        raise Rejected(400, f"body is not valid JSON: {problem}", "body") from None
    except (ValueError, RecursionError):
        raise Rejected(400, "body is not valid JSON", "body") from None
    _body_nesting_check(data)
    return data


def _body_nesting_check(data: Any) -> None:
    """Each field's value (``meta``, or any unknown key) may nest BEACONS_MAX_JSON_DEPTH deep,
    counted from the field, so a batch's envelope does not eat into the allowance."""
    try:
        if not isinstance(data, dict):
            _nesting_check(data, field="body")
            return
        for key, value in data.items():
            if not isinstance(value, (dict, list)):  # a scalar nests nothing
                continue
            if key == "events" and isinstance(value, list):
                for index, event in enumerate(value):
                    if isinstance(event, dict):
                        for event_key, event_value in event.items():
                            _nesting_check(event_value, field=f"events[{index}].{event_key[:64]}")
                    else:
                        _nesting_check(event, field=f"events[{index}]")
            else:
                _nesting_check(value, field=key[:64])
    except _Invalid as problem:
        raise Rejected(400, problem.error, problem.field) from None


def body_to_data(*, raw: bytes, content_type: str, meta: dict) -> Any:
    """Decode a body sent as JSON, text/plain JSON, or an urlencoded / multipart form."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if raw.lstrip().startswith(b"{") and media_type != "multipart/form-data":
        # A JSON object whatever the label: `curl -d '{…}'` sends it as a urlencoded form.
        return _decode_json(raw)
    if media_type == "application/x-www-form-urlencoded":
        try:
            form = QueryDict(raw, encoding="utf-8")
        except Exception:
            raise Rejected(400, "form body could not be decoded", "body") from None
        return {key: form.get(key) for key in form}
    if media_type == "multipart/form-data":
        try:
            form, _files = MultiPartParser(
                {**meta, "CONTENT_LENGTH": str(len(raw)), "CONTENT_TYPE": content_type}, BytesIO(raw), [], "utf-8"
            ).parse()
        except Exception:  # MultiPartParserError, ValueError, UnicodeDecodeError, …: a crafted body finds many
            raise Rejected(400, "multipart body could not be parsed", "body") from None
        return {key: form.get(key) for key in form}
    return _decode_json(raw)


def events_from_data(data: Any, *, event_type: str | None = None, identifier: str | None = None) -> list[EventInput]:
    """One event object, or ``{"events": [...]}``; raises ``Rejected`` naming every problem."""
    if not isinstance(data, dict):
        raise Rejected(400, "body must be a JSON object", "body")
    if "events" in data and event_type is None:
        batch = data["events"]
        if not isinstance(batch, list):
            raise Rejected(400, "events must be a list", "events")
        if not batch:
            raise Rejected(400, "events is empty", "events")
        if len(batch) > settings.BEACONS_MAX_BATCH:
            raise Rejected(400, f"a batch holds at most {settings.BEACONS_MAX_BATCH} events", "events")
        events, errors = [], []
        for index, item in enumerate(batch):
            try:
                events.append(event_from_mapping(item))
            except _Invalid as problem:
                errors.append({"index": index, "field": problem.field, "error": problem.error})
        if errors:
            raise Rejected(400, f"batch rejected: {len(errors)} invalid event(s), nothing counted", "events", errors)
        return events
    try:
        return [event_from_mapping(data, event_type=event_type, identifier=identifier)]
    except _Invalid as problem:
        raise Rejected(400, problem.error, problem.field) from None
