/*!
 * Beacons browser client: counts page views, your own events and JavaScript errors.
 * Readable source; browsers get beacon.min.js (regenerate: python bench/client_size.py --write).
 *
 * WHAT IT SENDS, and nothing else: POST to data-endpoint (default: /beacon on the origin this
 * script came from) with Content-Type text/plain and a JSON body, either one event
 *     {"event_type": "page_view", "identifier": "/pricing"}
 * or a batch of at most 50 events and 32,000 bytes
 *     {"events": [{"event_type": "download_click", "identifier": "brochure.pdf"}, ...]}
 * and, with data-site="shop.example.com", "site": "shop.example.com" in the body (the site counting
 * it; without it the server goes by the Origin and Referer headers), and "uid" when the page carries
 * data-uid (the server sets it for a signed-in user with BEACONS_IDENTIFY_USERS on).
 * The events:
 *   page_view   identifier: location.pathname (+ location.search with data-query-string,
 *               + location.hash with data-hash), once on load and once per route change
 *               (history.pushState / replaceState / popstate / hashchange); never twice in a row
 *               for the same route. Beside it, for the source and campaign breakdowns:
 *               referrer (document.referrer, cut to 2048 characters) and the page's
 *               utm_source, utm_medium, utm_campaign and ref query parameters (each cut to 120),
 *               even when the identifier leaves the query string out.
 *   error       identifier: the same page path; meta: {message, source, line, col, stack} from
 *               window "error" and "unhandledrejection" events and beacons.error() (stack cut to
 *               1 KB; the same error at most 5 times per page).
 *   your own    beacons.track(type, identifier, meta) and clicks on elements with data-beacon="type"
 *               (identifier from data-beacon-id).
 * It sets no cookie, writes no localStorage, and adds no visitor id or screen size (the browser
 * sends its usual User-Agent, Origin and Referer headers). With Do-Not-Track or
 * Global Privacy Control on (data-respect-do-not-track, default true), or while consent is required
 * and not given (data-require-consent, data-consent-cookie), it sends nothing at all.
 * It never throws into the page and never reports its own failures.
 */
(function (window, document, navigator) {
  "use strict";
  if (window.beacons && window.beacons.track) return; // loaded twice: the first copy counts, once

  var MAX_EVENTS = 50; // BEACONS_MAX_BATCH on the server
  var MAX_BYTES = 32000; // under BEACONS_MAX_BODY_BYTES and the browsers' 64 KB keepalive quota
  var MAX_META_BYTES = 2048; // BEACONS_MAX_META_BYTES
  var script = document.currentScript || {};
  var data = script.dataset || {};

  // data-batch-size="20" -> option("batchSize", 10) == 20; booleans are off only when "false" or "0".
  function option(name, fallback) {
    var value = data[name];
    if (value == null) return fallback;
    if (typeof fallback == "boolean") return value != "false" && value != "0";
    if (typeof fallback == "number") return isNaN(+value) ? fallback : +value;
    return value;
  }

  var endpoint = option("endpoint", "") || (script.src || "").replace(/^(\w+:\/\/[^/]+).*/, "$1") + "/beacon";
  var batchSize = option("batchSize", 10);
  var batchTimeout = option("batchTimeout", 5000);
  var directPageViews = option("directPageViews", true);
  var keepQuery = option("queryString", false);
  var keepHash = option("hash", false);
  var requireConsent = option("requireConsent", false);
  var consentCookie = option("consentCookie", "beacon_consent");
  var debug = option("debug", false);
  var site = option("site", "");
  var uid = option("uid", ""); // a signed-in user's signed, keyed hash (data-uid), never the user id
  var doNotTrack =
    option("respectDoNotTrack", true) &&
    (navigator.doNotTrack == "1" || window.doNotTrack == "1" || !!navigator.globalPrivacyControl);

  var queue = [];
  var timer = 0;
  var lastRoute;
  var errorsSeen = Object.create(null);
  var reporting = false;

  function log(what, detail) {
    if (debug) console.log("[beacons] " + what, detail);
  }

  function byteSize(text) {
    return new Blob([text]).size;
  }

  // The server refuses NUL and lone surrogates (and cutting can split a surrogate pair).
  function clip(value, max) {
    value = String(value).slice(0, max).replace(/\0/g, "");
    return value.toWellFormed ? value.toWellFormed() : value;
  }

  // Consent is a cookie set by the site's own banner; "0", "false", "no" and "denied" mean no.
  function consented() {
    var value = ("; " + document.cookie).split("; " + consentCookie + "=")[1];
    return !!value && !/^(0|false|no|denied)?(;|$)/i.test(value);
  }

  function enqueue(type, identifier, meta, sendNow, fields) {
    if (doNotTrack) return log("off (Do Not Track)", type);
    if (requireConsent && !consented()) return log("off (no consent)", type);
    type = String(type).trim().toLowerCase();
    if (!/^[a-z0-9_.:-]{1,64}$/.test(type)) return log("bad type", type);
    var event = { event_type: type };
    if (identifier != null && identifier !== "") event.identifier = clip(identifier, 256);
    for (var name in fields) event[name] = fields[name];
    if (meta != null) {
      var json = JSON.stringify(meta) || "";
      // A bad meta would make the server refuse the whole batch: drop the meta, keep the count.
      if (json[0] != "{" || byteSize(json) > MAX_META_BYTES || /\\u(0000|d[89a-f])/i.test(json)) log("bad meta", meta);
      else event.meta = JSON.parse(json); // a copy: later changes by the page are not sent
    }
    queue.push(event);
    log("queue", event);
    if (sendNow || queue.length >= batchSize) flush();
    else if (!timer) timer = setTimeout(flush, batchTimeout);
  }

  function flush() {
    clearTimeout(timer);
    timer = 0;
    var chunk = [];
    var bytes = 0;
    var event;
    var size;
    while ((event = queue.shift())) {
      size = byteSize(JSON.stringify(event)) + 1;
      if (chunk.length && (chunk.length == MAX_EVENTS || bytes + size > MAX_BYTES)) {
        post(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(event);
      bytes += size;
    }
    if (chunk.length) post(chunk);
  }

  // sendBeacon survives the page closing; text/plain is CORS-safelisted, so no preflight.
  function post(events) {
    var payload = events.length == 1 ? events[0] : { events: events };
    if (site) payload.site = site;
    if (uid) payload.uid = uid;
    var body = JSON.stringify(payload);
    log("send", body);
    try {
      if (navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }))) return;
    } catch (e) {}
    try {
      fetch(endpoint, { method: "POST", body: body, keepalive: true, credentials: "omit" })["catch"](function () {
        xhr(body);
      });
    } catch (e) {
      xhr(body);
    }
  }

  function xhr(body) {
    try {
      var request = new XMLHttpRequest();
      request.open("POST", endpoint);
      request.send(body);
    } catch (e) {
      log("fail", e);
    }
  }

  function route() {
    return location.pathname + (keepQuery ? location.search : "") + (keepHash ? location.hash : "");
  }

  // Where the visit came from; the server names the site and reads the campaign tags.
  function arrival() {
    var fields = {};
    var query = new URLSearchParams(location.search);
    if (document.referrer) fields.referrer = clip(document.referrer, 2048);
    ["utm_source", "utm_medium", "utm_campaign", "ref"].forEach(function (name) {
      if (query.get(name)) fields[name] = clip(query.get(name), 120);
    });
    return fields;
  }

  function pageView() {
    var current = route();
    if (current == lastRoute) return;
    lastRoute = current;
    enqueue("page_view", current, null, directPageViews, arrival());
  }

  function reportError(error, extra, where) {
    if (reporting) return; // a failure while reporting is not reported again
    reporting = true;
    try {
      where = where || {};
      var message = clip(error && error.message ? (error.name || "Error") + ": " + error.message : error, 300);
      var key = message + where.source + where.line + where.col;
      errorsSeen[key] = (errorsSeen[key] || 0) + 1;
      if (errorsSeen[key] > 5) return log("repeat", message);
      var meta = {
        message: message,
        source: where.source ? clip(where.source, 200) : undefined,
        line: where.line,
        col: where.col,
        stack: error && error.stack ? clip(error.stack, 1024) : undefined,
      };
      if (Object(extra) === extra) for (var name in extra) meta[name] = extra[name];
      enqueue("error", route(), meta);
    } catch (e) {
      log("fail", e);
    } finally {
      reporting = false;
    }
  }

  function guarded(fn) {
    return function () {
      try {
        fn.apply(null, arguments);
      } catch (e) {
        log("fail", e);
      }
    };
  }

  var methods = {
    track: function (type, identifier, meta) {
      enqueue(type, identifier, meta);
    },
    error: function (error, meta) {
      reportError(error, meta);
    },
    flush: flush,
  };

  // beacons("track", "signup", "footer") works before load (through the stub) and after;
  // beacons.track("signup", "footer") works after load.
  var api = guarded(function (name) {
    if (Object.prototype.hasOwnProperty.call(methods, name)) methods[name].apply(null, [].slice.call(arguments, 1));
    else log("no method", name);
  });
  Object.keys(methods).forEach(function (name) {
    api[name] = function () {
      api.apply(null, [name].concat([].slice.call(arguments)));
    };
  });

  try {
    var previous = window.beacons || {};
    var stubbed = previous.q || [];
    // What beacon-flags.js (or another script) put there first stays: flag(), getVariant()...
    for (var name in previous) if (name != "q" && !(name in api)) api[name] = previous[name];
    window.beacons = api;

    if (option("errors", true)) {
      window.addEventListener("error", function (event) {
        if (event.filename && event.filename == script.src) return;
        if (event.message == "Script error." && !event.lineno) return; // a cross-origin script: no detail to group
        reportError(event.error != null ? event.error : event.message, null, {
          source: event.filename,
          line: event.lineno,
          col: event.colno,
        });
      });
      window.addEventListener("unhandledrejection", function (event) {
        reportError(event.reason);
      });
    }

    document.addEventListener(
      "click",
      guarded(function (event) {
        var element = event.target.closest && event.target.closest("[data-beacon]");
        if (element) enqueue(element.getAttribute("data-beacon"), element.getAttribute("data-beacon-id"));
      }),
      true // capture: a page that stops propagation does not hide the click
    );

    window.addEventListener("pagehide", guarded(flush));
    document.addEventListener(
      "visibilitychange",
      guarded(function () {
        if (document.visibilityState == "hidden") flush();
      })
    );

    if (option("pageViews", true)) {
      ["pushState", "replaceState"].forEach(function (name) {
        var original = history[name];
        history[name] = function () {
          var result = original.apply(this, arguments);
          guarded(pageView)();
          return result;
        };
      });
      window.addEventListener("popstate", guarded(pageView));
      window.addEventListener("hashchange", guarded(pageView));
      // Back to a page kept in the back/forward cache: no reload, but a new view all the same.
      window.addEventListener("pageshow", function (event) {
        if (event.persisted) {
          lastRoute = null;
          guarded(pageView)();
        }
      });
      pageView();
    }

    for (var i = 0; i < stubbed.length; i++) api.apply(null, stubbed[i]);
  } catch (e) {
    log("fail", e);
  }
})(window, document, navigator);
