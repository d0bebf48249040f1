"""The Sentry SDKs' endpoint: their error events become ``error`` beacons of the site that holds the project.

``POST /api/<project id>/envelope/`` (an envelope: a header line, then item header and payload pairs)
and ``POST /api/<project id>/store/`` (one event as JSON), as a Sentry DSN
``https://<public key>@<this host>/<project id>`` makes every Sentry SDK send them. The site is the one
whose ``sentry_project_id`` is the project id; the key (``X-Sentry-Auth: Sentry sentry_key=…``,
``?sentry_key=`` or the envelope header's ``dsn``) must be its ``sentry_public_key``, else 401.

What is tolerated: bodies plain, gzip or deflate, at most BEACONS_MAX_BODY_BYTES before and after
decompressing (else 413; another encoding 415); envelope items with or without ``length``; any JSON
in any event field (what is not of the expected shape is left out). What is refused, counting nothing:
a malformed envelope or event (400). Event items and store bodies are counted through ingest's
``request_events_record`` (bots, origin, site, Do-Not-Track, rate limit, dedupe by ``event_id``), so
they join the site's error groups; every other item type (transactions, sessions, client reports,
attachments, replays…) is accepted and dropped. Answers are Sentry's: 200 ``{"id": "<event id>"}``,
refusals ``{"detail": "…"}`` (a 429 with ``Retry-After``); what ingest answers before reading a body (a
foreign origin 403, another method 405, ingest switched off 204, storage down 503) is answered as ingest does.
"""

import copy
import hmac
import json
import re
import uuid
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from beacons.errors.grouping import TITLE_MAX_LENGTH, error_signature
from beacons.ingest.compat import compat_required, page_address
from beacons.ingest.fastpath import ingest_endpoint
from beacons.ingest.parsing import Rejected, json_parse
from beacons.ingest.views import answered_before_the_body, cors, read_body, request_events_record, unavailable
from beacons.models import IDENTIFIER_MAX_LENGTH, Site
from beacons.registry import DB_UNREACHABLE
from beacons.sites import sites_cached
from beacons.text import storable_text

EVENT_TYPE = "error"  # the type the migrations register for JavaScript errors
SOURCE = "sentry"
ENVELOPE_ITEMS_MAX = 100  # an SDK sends an event and a few attachments or reports; more is not a Sentry client
FRAMES_READ = 50  # the innermost frames of an exception that are looked at: the meta holds fewer anyway
TEXT_MAX_LENGTH = 200  # release, environment, transaction, a context, a file, a function: Sentry's tag value length
TAG_KEY_MAX_LENGTH = 32  # Sentry's
TAGS_MAX_BYTES = 512  # of the meta: the rest is for the stack
FINGERPRINT_PARTS_MAX = 8
FINGERPRINT_PART_MAX_LENGTH = 64
CONTEXTS_KEPT = ("browser", "os", "runtime", "device")
DEFAULT_FINGERPRINT = re.compile(r"^\{\{\s*default\s*\}\}$", re.IGNORECASE)
RETRY_AFTER_SECONDS = "60"  # the rate limits count per minute
CORS_ALLOWED_HEADERS = "Content-Type, Content-Encoding, X-Sentry-Auth"
CORS_EXPOSED_HEADERS = "Retry-After, X-Sentry-Rate-Limits"  # what the browser SDK reads to back off

_AUTH_KEY = re.compile(r"\bsentry_key\s*=\s*([^,\s]+)")


@csrf_exempt
@compat_required("sentry")
@ingest_endpoint
def endpoint(request: HttpRequest, project_id: int) -> HttpResponse:
    """POST /api/<project_id>/envelope/ and /api/<project_id>/store/ (see the module docstring)."""
    origin = request.META.get("HTTP_ORIGIN", "")
    answered = answered_before_the_body(request, origin)
    if answered is not None:
        if request.method == "OPTIONS" and answered.status_code == 204:
            answered["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
        return answered
    is_store = request.resolver_match.url_name == "sentry_store"
    try:
        project = _project_of(project_id)
        if project is None:
            raise Rejected(401, "unknown project: no site takes this Sentry project id")
        key = _key_sent(request)
        if key is not None or is_store:
            _key_check(project, key)  # before the body is read
        body = _body_decoded(request)
        if is_store:
            events, event_id = [_json_object(body, what="event")], None
        else:
            header, items = envelope_split(body)
            if key is None:
                _key_check(project, _dsn_key(header.get("dsn")))
            events = [_json_object(payload, what="event item") for item, payload in items if item["type"] == "event"]
            event_id = _event_id(header.get("event_id"))
        beacons = [beacon_of(event) for event in events]
        if beacons:
            request_events_record(
                _as_sent_for(request, events[0]), source=SOURCE, data={"events": beacons}, site_named=project.domain
            )
    except Rejected as problem:
        return _refused(problem, origin)
    except DB_UNREACHABLE:
        return unavailable(origin)
    event_id = event_id or next((beacon["id"] for beacon in beacons if beacon["id"]), None)
    if event_id is None and events:
        event_id = uuid.uuid4().hex  # Sentry names an event sent without an id
    return _answered(JsonResponse({"id": event_id} if event_id else {}), origin)


def _answered(response: HttpResponse, origin: str) -> HttpResponse:
    cors(response, origin)
    if origin:
        response["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
    return response


def _refused(problem: Rejected, origin: str) -> HttpResponse:
    """A refusal as Sentry words one, ``{"detail": "…"}``; a 429 says when to try again, which the SDKs obey."""
    response = _answered(JsonResponse({"detail": problem.error}, status=problem.status), origin)
    if problem.status == 429:
        response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


# --- the project and its key -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Project:
    domain: str  # of the site that takes the project's events
    public_key: str


_projects: tuple[object, dict[int, _Project]] = (None, {})  # (the sites list they were read with, by project id)


def _project_of(project_id: int) -> _Project | None:
    """The site that takes Sentry project ``project_id``. Read again whenever ``sites.sites_cached`` reads the
    sites (every few seconds, and at once after a site is saved in this process): no query per event."""
    global _projects
    sites = sites_cached()
    read_with, projects = _projects
    if read_with is not sites:
        rows = Site.objects.filter(sentry_project_id__isnull=False).values_list(
            "sentry_project_id", "domain", "sentry_public_key"
        )
        projects = {number: _Project(domain, key) for number, domain, key in rows}
        _projects = (sites, projects)
    return projects.get(project_id)


def _key_sent(request: HttpRequest) -> str | None:
    """The public key of the request's ``X-Sentry-Auth`` header (server SDKs) or ``sentry_key`` query (browsers)."""
    match = _AUTH_KEY.search(request.META.get("HTTP_X_SENTRY_AUTH", ""))
    return match[1] if match else request.GET.get("sentry_key")


def _dsn_key(dsn: Any) -> str | None:
    """The public key of a DSN (``https://<key>@host/<project>``), as an envelope header carries it."""
    if not isinstance(dsn, str):
        return None
    try:
        return urlsplit(dsn).username
    except ValueError:
        return None


def _key_check(project: _Project, key: str | None) -> None:
    if not key:
        raise Rejected(401, "missing authorization: send the DSN's public key (X-Sentry-Auth or ?sentry_key=)")
    sent, expected = key.encode("utf-8", "replace"), project.public_key.encode()
    if not expected or not hmac.compare_digest(sent, expected):
        raise Rejected(401, "invalid public key for this project")


# --- the body ----------------------------------------------------------------------------------


def _body_decoded(request: HttpRequest) -> bytes:
    """The body, decompressed by its Content-Encoding: at most BEACONS_MAX_BODY_BYTES either way (413)."""
    raw = read_body(request)
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return _inflated(raw, wbits=zlib.MAX_WBITS | 16)
    if encoding == "deflate":  # RFC 9110 says zlib's format; some clients send the bare stream
        return _inflated(raw, wbits=zlib.MAX_WBITS if _has_zlib_header(raw) else -zlib.MAX_WBITS)
    raise Rejected(415, f"Content-Encoding {encoding[:40]!r} is not read here: send gzip, deflate or none")


def _has_zlib_header(raw: bytes) -> bool:
    return len(raw) >= 2 and raw[0] & 0x0F == 8 and (raw[0] << 8 | raw[1]) % 31 == 0


def _inflated(raw: bytes, *, wbits: int) -> bytes:
    """``raw`` decompressed, never more than one byte over the limit held in memory (a small bomb inflates
    to gigabytes)."""
    limit = settings.BEACONS_MAX_BODY_BYTES
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise Rejected(400, "body is not valid for its Content-Encoding") from None
    if len(body) > limit:
        raise Rejected(413, f"body is larger than {limit} bytes once decompressed")
    if not inflater.eof or inflater.unused_data:
        raise Rejected(400, "compressed body is cut short or followed by other data")
    return body


def _json_object(raw: bytes, *, what: str) -> dict:
    try:
        value = json_parse(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Rejected(400, f"{what} is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise Rejected(400, f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise Rejected(400, f"{what} must be a JSON object")
    return value


def envelope_split(body: bytes) -> tuple[dict, list[tuple[dict, bytes]]]:
    """The header and the (item header, payload) pairs of a Sentry envelope. An item header's ``length`` is
    its payload's size in bytes; without it the payload ends at the next newline. Raises ``Rejected`` (400)
    for anything else, and for more than ENVELOPE_ITEMS_MAX items."""
    end = _line_end(body, 0)
    header = _json_object(body[:end], what="envelope header")
    items: list[tuple[dict, bytes]] = []
    position = end + 1
    while position < len(body):
        end = _line_end(body, position)
        line = body[position:end]
        position = end + 1
        if not line.strip():  # a newline after the last payload, or between items
            continue
        if len(items) == ENVELOPE_ITEMS_MAX:
            raise Rejected(400, f"an envelope holds at most {ENVELOPE_ITEMS_MAX} items")
        item = _json_object(line, what="item header")
        if not isinstance(item.get("type"), str):
            raise Rejected(400, "an item header has no type")
        length = item.get("length")
        if length is None:
            end = _line_end(body, position)
        elif isinstance(length, int) and not isinstance(length, bool) and 0 <= length <= len(body) - position:
            end = position + length
        else:
            raise Rejected(400, "an item's length is not the size of what follows it")
        items.append((item, body[position:end]))
        position = end  # the newline that ends a payload, if one does, is read next as a blank line
    return header, items


def _line_end(body: bytes, start: int) -> int:
    end = body.find(b"\n", start)
    return len(body) if end < 0 else end


# --- a Sentry event as a beacon ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    file: str
    function: str
    line: int | None
    col: int | None
    in_app: bool

    @property
    def stack_line(self) -> str:
        """The frame as Chrome writes one, ``at function (file:line:col)``: what beacon.js sends and grouping reads."""
        location = self.file or "<anonymous>"
        if self.line is not None:
            location += f":{self.line}" if self.col is None else f":{self.line}:{self.col}"
        return f"    at {self.function} ({location})" if self.function else f"    at {location}"


def beacon_of(event: dict) -> dict:
    """The ``error`` beacon of one Sentry event (a parsed store body or event item), its meta within
    BEACONS_MAX_META_BYTES: fields are kept in order of importance, text cut to what is left.

    The message is the exception's ``Type: value`` (the last of ``exception.values``, the one Sentry
    titles the event by), else the ``logentry``/``message``. The stack lists the exception's in-app frames,
    innermost first (all its frames when none is in-app), as Chrome writes them, so the group is its type
    and message (variable parts masked) and its top in-app frame, as beacon.js's errors are grouped. A
    ``fingerprint`` other than ``["{{ default }}"]`` groups instead (``{{ default }}`` in it stands for the
    group it would have had). The identifier is the page path of ``request.url``, else the transaction."""
    exception = _main_exception(event)
    message = _message_of(event, exception)[:TITLE_MAX_LENGTH]
    frames = [_frame_of(frame) for frame in reversed(_frames_of(event, exception))]
    shown = [frame for frame in frames if frame.in_app] or frames
    lines = [frame.stack_line for frame in shown]
    if len(shown) < len(frames):
        lines.append(f"    ({len(frames) - len(shown)} frames outside the app left out)")
    top = shown[0] if shown else _Frame("", "", None, None, False)
    where = {"source": top.file, "line": top.line, "col": top.col}
    default_group = error_signature(meta={"message": message, "stack": "\n".join(lines[:1]), **where}).fingerprint
    request = _dict(event.get("request"))
    fields = [
        ("fingerprint", _fingerprint_of(event.get("fingerprint"), default_group=default_group)),
        ("message", message),
        ("stack", lines[0] if lines else ""),  # the top frame first: it decides the group, the rest is to read
        *where.items(),
        ("level", _text(event.get("level"), TAG_KEY_MAX_LENGTH)),
        ("release", _text(event.get("release"), TEXT_MAX_LENGTH)),
        ("environment", _text(event.get("environment"), TEXT_MAX_LENGTH)),
        ("transaction", _text(event.get("transaction") or event.get("culprit"), TEXT_MAX_LENGTH)),
        ("platform", _text(event.get("platform"), TAG_KEY_MAX_LENGTH)),
        ("contexts", _contexts_of(event.get("contexts"))),
        ("tags", _tags_of(event.get("tags"))),
        ("stack", "\n".join(lines)),
    ]
    return {
        "event_type": EVENT_TYPE,
        "identifier": _page_path(request.get("url"))
        or _text(event.get("transaction") or event.get("culprit"), IDENTIFIER_MAX_LENGTH)
        or None,
        "meta": _meta_within_limit(fields),
        "id": _event_id(event.get("event_id")),
    }


def _as_sent_for(request: HttpRequest, event: dict) -> HttpRequest:
    """The request as ingest should read its visitor: a server SDK sends with its own User-Agent
    (``sentry.python/2.x``), and the event names the browser it served in ``request.headers``."""
    user_agent = _header(_dict(event.get("request")).get("headers"), "user-agent")
    if not user_agent:
        return request
    visitor_request = copy.copy(request)
    visitor_request.META = {**request.META, "HTTP_USER_AGENT": user_agent}
    return visitor_request


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _values(value: Any) -> list[dict]:
    """The objects of a Sentry list field: ``{"values": [...]}``, or the bare list older SDKs send."""
    values = value.get("values") if isinstance(value, dict) else value
    return [item for item in values if isinstance(item, dict)] if isinstance(values, list) else []


def _text(value: Any, limit: int = TITLE_MAX_LENGTH) -> str:
    """A string or number sent as text the database stores, on one line, cut to ``limit``; "" for anything else."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    return " ".join(storable_text(str(value)[: limit * 2]).split())[:limit]


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _event_id(value: Any) -> str | None:
    try:
        return uuid.UUID(value).hex if isinstance(value, str) else None
    except ValueError:
        return None


def _main_exception(event: dict) -> dict | None:
    exceptions = _values(event.get("exception"))
    return exceptions[-1] if exceptions else None


def _message_of(event: dict, exception: dict | None) -> str:
    if exception is not None:
        kind, value = _text(exception.get("type")), storable_text(_text_as_sent(exception.get("value")))
        return f"{kind}: {value}" if kind and value else kind or value
    for field in ("logentry", "message"):
        entry = event.get(field)
        if isinstance(entry, dict):
            entry = entry.get("formatted") or entry.get("message")
        if isinstance(entry, str) and entry:
            return storable_text(entry)
    return ""


def _text_as_sent(value: Any) -> str:
    return value[: TITLE_MAX_LENGTH * 2] if isinstance(value, str) else _text(value)


def _frames_of(event: dict, exception: dict | None) -> list[dict]:
    """The frames of the exception (else of the event's or a thread's stack), oldest call first, as sent."""
    for holder in (exception, event, *_values(event.get("threads"))):
        frames = _dict(_dict(holder).get("stacktrace")).get("frames")
        if isinstance(frames, list) and frames:
            return [frame for frame in frames[-FRAMES_READ:] if isinstance(frame, dict)]
    return []


def _frame_of(frame: dict) -> _Frame:
    function = _text(frame.get("function"), TEXT_MAX_LENGTH)
    return _Frame(
        file=_text(frame.get("filename") or frame.get("abs_path") or frame.get("module"), TEXT_MAX_LENGTH),
        # Sentry's "?" is an anonymous function; parentheses would end the function in a Chrome frame.
        function="" if function == "?" else function.replace("(", "").replace(")", ""),
        line=_number(frame.get("lineno")),
        col=_number(frame.get("colno")),
        in_app=frame.get("in_app") is not False,
    )


def _fingerprint_of(parts: Any, *, default_group: str) -> list[str] | None:
    """The event's own grouping, or None for Sentry's default (none sent, or ``["{{ default }}"]``)."""
    if not isinstance(parts, list):
        return None
    texts = [_text(part, FINGERPRINT_PART_MAX_LENGTH) for part in parts[:FINGERPRINT_PARTS_MAX]]
    texts = [text for text in texts if text]
    if all(DEFAULT_FINGERPRINT.match(text) for text in texts):
        return None
    return [default_group if DEFAULT_FINGERPRINT.match(text) else text for text in texts]


def _page_path(url: Any) -> str:
    """The path of the event's page address; "" when it has none that reads as one."""
    if not isinstance(url, str) or not url.strip():
        return ""
    try:
        return page_address(storable_text(url), field="request.url").path
    except Rejected:  # not a URL: the identifier falls back to the transaction
        return ""


def _header(headers: Any, name: str) -> str:
    """Header ``name`` (lower case) of a Sentry request's ``headers``: an object, or a list of pairs."""
    pairs = headers.items() if isinstance(headers, dict) else headers if isinstance(headers, list) else []
    for pair in pairs:
        if isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], str):
            if pair[0].lower() == name:
                return _text(pair[1], 512)
    return ""


def _contexts_of(contexts: Any) -> dict[str, str]:
    """``{"browser": "Chrome 131.0", "os": "Linux", …}``: the name and version of the contexts worth reading."""
    kept = {}
    for name in CONTEXTS_KEPT:
        context = _dict(_dict(contexts).get(name))
        text = _text(" ".join(_text(context.get(field)) for field in ("name", "version")), TEXT_MAX_LENGTH)
        if text:
            kept[name] = text
    return kept


def _tags_of(tags: Any) -> dict[str, str]:
    """The tags (an object, or a list of pairs), each cut to Sentry's lengths, as many as TAGS_MAX_BYTES holds."""
    pairs = tags.items() if isinstance(tags, dict) else tags if isinstance(tags, list) else []
    kept: dict[str, str] = {}
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            continue
        key, value = _text(pair[0], TAG_KEY_MAX_LENGTH), _text(pair[1], TEXT_MAX_LENGTH)
        if key and value:
            if _size({**kept, key: value}) > TAGS_MAX_BYTES:
                break
            kept[key] = value
    return kept


def _size(value: Any) -> int:
    """Bytes of ``value`` as JSON, measured as ingest measures meta (``parsing.normalise_meta``)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _meta_within_limit(fields: list[tuple[str, Any]]) -> dict:
    """``fields`` in order of importance, as many as BEACONS_MAX_META_BYTES holds: a text that does not fit
    is cut to the room left (a stack after its last whole line), anything else that does not fit is left out.
    A key given twice takes its later value when that fits."""
    limit = settings.BEACONS_MAX_META_BYTES
    meta: dict[str, Any] = {}
    for key, value in fields:
        if value is None or value == "" or value == [] or value == {}:
            continue
        room = limit - _size({**meta, key: ""})
        if isinstance(value, str):
            value = _stack_within(value, room) if key == "stack" else _text_within(value, room)
            if value and len(value) >= len(meta.get(key, "")):
                meta[key] = value
        elif _size({**meta, key: value}) <= limit:
            meta[key] = value
    return meta


def _stack_within(stack: str, room: int) -> str:
    lines, size = [], 0
    for line in stack.split("\n"):
        size += _size(line) - 2 + (2 if lines else 0)  # the line without its quotes, and "\n" as JSON writes it
        if size > room:
            break
        lines.append(line)
    return "\n".join(lines) if lines else _text_within(stack.split("\n", 1)[0], room)


def _text_within(text: str, room: int) -> str:
    """The longest start of ``text`` whose JSON form (without quotes) takes at most ``room`` bytes."""
    text = text[: max(room, 0)]  # a character takes at least a byte
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _size(text[:middle]) - 2 <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low]
