/*!
 * Beacons flags client: feature flags and A/B experiments in the page.
 * Readable source; browsers get beacon-flags.min.js (regenerate: python bench/client_size.py --write).
 *
 * WHAT IT LOADS: GET <data-endpoint>/beacon/flags/<data-site>.json, once, without cookies: the
 * site's flags and experiments in the GrowthBook SDK payload format (beacons/experiments/payload.py),
 * evaluated here by the rules of beacons/experiments/evaluation.py, whose hash every GrowthBook SDK
 * shares: the page, the Django server and any GrowthBook SDK give a unit the same value.
 * Rules read the attributes id (the unit), user (the part of data-uid before ":"), signedIn (a
 * data-uid is there), site, path (location.pathname), the server's (country, device, browser, os)
 * and the page's (beacons.setAttributes), which may replace any but id and user.
 *
 * WHAT IT STORES, and nothing else, only while tracking is allowed (below):
 *   cookie beacons_unit           16 random bytes, base64url (22 characters): the unit that rollouts,
 *                                 splits and experiments hash; made only when one of the site's
 *                                 rules hashes it. path=/, one year, SameSite=Lax, Secure on https.
 *                                 The Django server reads the same cookie, so page and server agree.
 *   localStorage beacons_exposed  {"<experiment key>": "<unit>", ...}: the unit each running
 *                                 experiment was reported for, so a reload does not report it again.
 *
 * WHAT IT SENDS, and nothing else: POST to <data-endpoint>/beacon/experiments (navigator.sendBeacon,
 * Content-Type text/plain;charset=UTF-8) with a JSON body of at most 20 exposures and 20 conversions
 *     {"site": "shop.example.com", "unit": "<beacons_unit>", "uid": "<data-uid>",
 *      "exposures": [{"experiment": "checkout-button", "variation": "b"}],
 *      "conversions": [{"experiment": "checkout-button", "metric": "signup", "value": 12.5}]}
 * ("unit" and "uid" when there are, empty lists left out), a moment after the page read or converted,
 * or as it is hidden:
 *   exposure    once per unit and running experiment, the first time the page reads the variation the
 *               hash gave it: getVariant, isInVariant, flag(experiment key), data-variant. A variation
 *               forced with forceVariant is never reported.
 *   conversion  trackConversion(experiment, metric, value?) when the hash put the unit in that running
 *               experiment and the metric is one of the experiment's; value when a finite number.
 * With Do-Not-Track or Global Privacy Control on (data-respect-do-not-track, default true), or while
 * consent is required and not given (data-require-consent, data-consent-cookie, as in beacon.js), it
 * stores nothing and sends nothing, and hashes neither the unit nor data-uid: rollouts, splits and
 * experiments serve their defaults, as GrowthBook SDKs do without a hash attribute. Flags still work.
 *
 * API, added to window.beacons beside beacon.js's (each method answers null rather than throw):
 *   flag(key)                            the value; null before the definitions are in, or unknown
 *   getVariant(experiment)               the variation's key, null when not in the experiment
 *   isInVariant(experiment, variation)
 *   trackConversion(experiment, metric, value?)   kept until the definitions are in
 *   setAttributes({...})                 for the rules; markup is applied again
 *   ready(callback)                      once the definitions are in (or failed to load), at once after
 * and with data-debug only: forceVariant(experiment, variation key or index), resetAssignments() (no
 * forced variations, no remembered exposures, a new unit), and evaluate(key, attributes): what those
 * attributes get, nothing reported (tests/test_client_flags.py holds it to the server and GrowthBook).
 * Markup, once loaded: data-flag="key" is shown when the flag is truthy, data-flag-off="key" when it
 * is not, data-variant="experiment:variation" only in that variation (a read, as getVariant).
 */
(function (window, document, navigator) {
  "use strict";
  var beacons = window.beacons || {};
  if (beacons.getVariant) return; // loaded twice: the first copy serves

  var EXPOSED = "beacons_exposed";
  var script = document.currentScript || {};
  var data = script.dataset || {};

  // As beacon.js: booleans are off only when "false" or "0".
  function option(name, fallback) {
    var value = data[name];
    if (value == null) return fallback;
    if (typeof fallback == "boolean") return value != "false" && value != "0";
    return value;
  }

  var endpoint = option("endpoint", "") || (script.src || "").replace(/^(\w+:\/\/[^/]+).*/, "$1");
  var site = option("site", "") || location.hostname;
  var uid = option("uid", ""); // a signed-in user's token, "<keyed hash>:<signature>"
  var user = uid.split(":")[0];
  var debug = option("debug", false);
  var requireConsent = option("requireConsent", false);
  var consentCookie = option("consentCookie", "beacon_consent");
  var doNotTrack =
    option("respectDoNotTrack", true) &&
    (navigator.doNotTrack == "1" || window.doNotTrack == "1" || !!navigator.globalPrivacyControl);

  var features = {};
  var running = {}; // experiment key -> {unit, metrics}: the experiments that report
  var serverAttributes = {};
  var pageAttributes = {};
  var needsUnit = false;
  var unit = "";
  var forced = {}; // debug: experiment key -> variation key or index
  var exposedTo; // beacons_exposed, read when first needed
  var outbox = { exposures: [], conversions: [] };
  var timer = 0;
  var loaded = false;
  var waiting = [];

  function log(what, detail) {
    if (debug) console.log("[beacons] " + what, detail);
  }

  function has(object, key) {
    return {}.hasOwnProperty.call(object, key);
  }

  function copy(into, from) {
    for (var name in from) into[name] = from[name];
    return into;
  }

  // --- Evaluation: beacons/experiments/evaluation.py, rule for rule ---

  // FNV-1a over UTF-16 code units: GrowthBook's hash.
  function fnv1a32(text) {
    var value = 0x811c9dc5;
    for (var i = 0; i < text.length; i++) value = Math.imul(value ^ text.charCodeAt(i), 0x01000193);
    return value >>> 0;
  }

  // The unit's place in [0, 1) for the seed; null for a hash version this does not know.
  function unitHash(seed, unitValue, version) {
    if (version === 2) return (fnv1a32("" + fnv1a32(seed + unitValue)) % 10000) / 10000;
    return version === 1 ? (fnv1a32(unitValue + seed) % 1000) / 1000 : null;
  }

  // bucket_ranges and variation_chosen in one: the same sums, in the same order.
  function variationChosen(position, count, coverage, weights) {
    var low = 0;
    var sum = 0;
    var i;
    coverage = Math.min(Math.max(coverage, 0), 1);
    if (!weights || weights.length != count) weights = [];
    for (i = 0; i < weights.length; i++) sum += weights[i];
    for (i = 0; i < count; i++) {
      var weight = sum >= 0.99 && sum <= 1.01 ? weights[i] : 1 / count;
      if (low <= position && position < low + coverage * weight) return i;
      low += weight;
    }
    return -1;
  }

  // "1.10.0" above "1.9.2", "1.0.0" above "1.0.0-rc.1".
  function paddedVersion(value) {
    var parts = ((typeof value == "string" && value) || "0").replace(/^v|\+.*$/g, "").split(/[-.]/);
    if (parts.length == 3) parts.push("~");
    return parts
      .map(function (part) {
        if (/^\d+$/.test(part)) while (part.length < 5) part = " " + part;
        return part;
      })
      .join("-");
  }

  // Values compare with ===, as in the GrowthBook SDKs: true is not 1, 1 is 1.0.
  function operatorHolds(operator, actual, expected) {
    var list = Array.isArray(expected);
    var orderable = typeof actual == typeof expected && /^(number|string)$/.test(typeof actual);
    var matched = false;
    if (/^\$v(eq|ne|[gl]te?)$/.test(operator)) {
      if (!orderable) return operator == "$vne";
      actual = paddedVersion(actual);
      expected = paddedVersion(expected);
      operator = operator.replace("v", ""); // the padded versions compare as texts: $vgte as $gte
    }
    try {
      matched = operator == "$regex" && typeof actual == "string" && new RegExp(expected).test(actual);
    } catch (e) {}
    var holds = {
      $eq: actual === expected,
      $ne: actual !== expected,
      $in: list && expected.indexOf(actual) >= 0,
      $nin: list && expected.indexOf(actual) < 0,
      $regex: matched,
      $exists: (actual != null) == !!expected,
      $gt: orderable && actual > expected,
      $gte: orderable && actual >= expected,
      $lt: orderable && actual < expected,
      $lte: orderable && actual <= expected,
    };
    // Another operator (the payload writes none): the rule is skipped, as an SDK skips it.
    return has(holds, operator) && holds[operator];
  }

  function conditionHolds(condition, attributes) {
    return Object.keys(condition).every(function (key) {
      var expected = condition[key];
      var operators = Object.keys(Object(expected)); // a list's or a text's are "0", "1"...
      var holds = function (part) {
        return conditionHolds(part, attributes);
      };
      var actual = attributes[key] == null ? null : attributes[key];
      if (key == "$and") return expected.every(holds);
      if (key == "$or") return !expected.length || expected.some(holds);
      if (key == "$not") return !holds(expected);
      var compared = operators.length && operators.every(function (name) {
        return name.charAt(0) == "$";
      });
      if (!compared) return actual === expected;
      return operators.every(function (operator) {
        return operatorHolds(operator, actual, expected[operator]);
      });
    });
  }

  function variationKey(rule, index) {
    var meta = (rule.meta || [])[index];
    return meta && "key" in meta ? meta.key : "" + index;
  }

  // {value}, and for an experiment: its key, the variation's key, the unit hashed, and whether
  // the hash chose the variation (not forceVariant).
  function featureEvaluate(key, attributes) {
    var feature = has(features, key) && features[key];
    if (Object(feature) !== feature) return { value: null }; // an unknown feature
    var rules = feature.rules || [];
    for (var i = 0; i < rules.length; i++) {
      var rule = rules[i];
      var force = "force" in rule;
      var variations = rule.variations || [];
      var experiment = rule.key || key;
      var unitValue = attributes[rule.hashAttribute || "id"];
      if (typeof unitValue != "string") unitValue = "";
      if (rule.condition && !conditionHolds(rule.condition, attributes)) continue;
      // A rollout's seed falls back to the feature's key, an experiment's to its own.
      var seed = rule.seed || (force ? key : experiment);
      var position = unitValue ? unitHash(seed, unitValue, rule.hashVersion || 1) : null;
      if (force) {
        var range = rule.range;
        if (!range || (position !== null && range[0] <= position && position < range[1])) {
          return { value: rule.force };
        }
        continue;
      }
      if (variations.length < 2) continue;
      var wanted = forced[experiment];
      var chosen = -1;
      for (var j = 0; j < variations.length; j++) if (wanted === j || wanted === variationKey(rule, j)) chosen = j;
      var hashed = chosen < 0;
      if (hashed && position !== null) {
        var coverage = rule.coverage == null ? 1 : rule.coverage;
        chosen = variationChosen(position, variations.length, coverage, rule.weights);
      }
      if (chosen >= 0) {
        return {
          value: variations[chosen],
          experiment: experiment,
          variation: variationKey(rule, chosen),
          unit: unitValue,
          hashed: hashed,
        };
      }
    }
    return { value: feature.defaultValue === undefined ? null : feature.defaultValue };
  }

  // --- The page: its unit, exposures and conversions ---

  function cookie(name) {
    return (("; " + document.cookie).split("; " + name + "=")[1] || "").split(";")[0];
  }

  // Consent is a cookie set by the site's own banner; "0", "false", "no" and "denied" mean no.
  function allowed() {
    return !doNotTrack && !(requireConsent && /^(0|false|no|denied)?$/i.test(cookie(consentCookie)));
  }

  function unitMake() {
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    var value = btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").slice(0, 22);
    document.cookie =
      "beacons_unit=" + value + "; path=/; max-age=31536000; SameSite=Lax" + (location.protocol == "https:" ? "; Secure" : "");
    return value;
  }

  function attributes() {
    var all = copy(Object.create(null), serverAttributes);
    var tracked = allowed();
    all.signedIn = !!user;
    all.site = site;
    all.path = location.pathname;
    copy(all, pageAttributes);
    if (!unit && needsUnit && tracked) {
      unit = cookie("beacons_unit");
      if (!/^[\w-]{22}$/.test(unit)) unit = unitMake();
    }
    // The units, hashed and reported, are this script's alone. No unit: rules hashing it serve defaults.
    all.id = (tracked && unit) || null;
    all.user = (tracked && user) || null;
    return all;
  }

  // Sent together, a moment later or as the page goes: at most 20 of each, the server's limit.
  function queue(list, item) {
    outbox[list].push(item);
    if (!timer) timer = setTimeout(guarded(flush));
  }

  function flush() {
    clearTimeout(timer);
    timer = 0;
    while (outbox.exposures.length || outbox.conversions.length) {
      var body = { site: site, unit: unit || undefined, uid: uid || undefined };
      for (var list in outbox) if (outbox[list].length) body[list] = outbox[list].splice(0, 20);
      body = JSON.stringify(body);
      log("send", body);
      // sendBeacon survives the page closing; a text is sent as text/plain, CORS-safelisted: no preflight.
      navigator.sendBeacon(endpoint + "/beacon/experiments", body);
    }
  }

  function expose(result) {
    var experiment = result.experiment;
    if (!result.hashed || !has(running, experiment) || !allowed()) return;
    if (!exposedTo) {
      try {
        exposedTo = JSON.parse(localStorage.getItem(EXPOSED));
      } catch (e) {}
      exposedTo = Object(exposedTo);
    }
    if (exposedTo[experiment] === result.unit) return;
    exposedTo[experiment] = result.unit;
    for (var key in exposedTo) if (!has(running, key)) delete exposedTo[key]; // the record stays small
    try {
      localStorage.setItem(EXPOSED, JSON.stringify(exposedTo));
    } catch (e) {}
    queue("exposures", { experiment: experiment, variation: result.variation });
  }

  function read(key) {
    var result = featureEvaluate(key, attributes());
    expose(result);
    return result;
  }

  function convert(experiment, metric, value) {
    var reporting = featureEvaluate(experiment, attributes()).hashed && has(running, experiment) && running[experiment];
    if (!reporting || reporting.metrics.indexOf(metric) < 0 || !allowed()) return;
    var item = { experiment: experiment, metric: metric };
    if (typeof value == "number" && isFinite(value)) item.value = value;
    queue("conversions", item);
  }

  function guarded(fn) {
    return function () {
      try {
        return fn.apply(null, arguments);
      } catch (e) {
        log("fail", e);
        return null;
      }
    };
  }

  function ready(callback) {
    if (!loaded) return waiting.push(callback);
    try {
      callback();
    } catch (e) {
      // The callback's own error is the page's: thrown on its own, where the page's handlers see it.
      setTimeout(function () {
        throw e;
      });
    }
  }

  function variant(experiment) {
    return read(experiment).variation || null;
  }

  function inVariant(experiment, variation) {
    return variant(experiment) === "" + variation;
  }

  // Once loaded and once the document is (whichever comes last), and after every change.
  var markup = guarded(function () {
    if (!loaded) return;
    var elements = document.querySelectorAll("[data-flag],[data-flag-off],[data-variant]");
    for (var i = 0; i < elements.length; i++) {
      var element = elements[i];
      var on = element.dataset.flag;
      var off = element.dataset.flagOff;
      var wanted = (element.dataset.variant || "").split(":");
      element.hidden = !(
        (on == null || !!read(on).value) &&
        (off == null || !read(off).value) &&
        (wanted.length < 2 || inVariant(wanted[0], wanted[1]))
      );
    }
  });

  var api = {
    flag: function (key) {
      return read(key).value;
    },
    getVariant: variant,
    isInVariant: inVariant,
    trackConversion: function (experiment, metric, value) {
      ready(guarded(convert.bind(null, experiment, metric, value)));
    },
    setAttributes: function (given) {
      copy(pageAttributes, given);
      markup();
    },
    ready: ready,
    // Debugging, with data-debug only:
    forceVariant: function (experiment, variation) {
      if (debug) forced[experiment] = variation;
      markup();
    },
    resetAssignments: function () {
      if (!debug) return;
      flush(); // what the old unit saw goes out under it
      forced = {};
      exposedTo = {};
      unit = needsUnit && allowed() ? unitMake() : "";
      localStorage.removeItem(EXPOSED);
      markup();
    },
    evaluate: function (key, given) {
      return debug ? featureEvaluate(key, copy(Object.create(null), given)) : null;
    },
  };

  function definitionsUse(payload) {
    var extra = Object(payload.beacons);
    var published = Object(payload.features);
    // payload.py names the hash attribute on exactly the rules that hash: rollouts, splits, experiments.
    needsUnit = Object.keys(published).some(function (key) {
      return (Object(published[key]).rules || []).some(function (rule) {
        return rule.hashAttribute == "id";
      });
    });
    running = Object(extra.experiments);
    serverAttributes = Object(extra.attributes);
    features = published;
  }

  function definitionsLoaded() {
    loaded = true;
    markup();
    waiting.splice(0).forEach(ready);
  }

  try {
    for (var name in api) beacons[name] = guarded(api[name]); // null rather than an error
    window.beacons = beacons;
    window.addEventListener("pagehide", guarded(flush));
    document.addEventListener("DOMContentLoaded", markup);
    fetch(endpoint + "/beacon/flags/" + encodeURIComponent(site) + ".json", { credentials: "omit" })
      .then(function (response) {
        if (!response.ok) throw response.status;
        return response.json();
      })
      .then(definitionsUse)
      ["catch"](log)
      .then(definitionsLoaded);
  } catch (e) {
    log("fail", e);
    definitionsLoaded();
  }
})(window, document, navigator);
