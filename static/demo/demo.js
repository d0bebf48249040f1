// Behaviour of the /demo/ page (no inline scripts, so the site's CSP applies unchanged).
// The one-line stub: calls made before beacon.js has loaded are queued and replayed by it.
window.beacons = window.beacons || function () { (beacons.q = beacons.q || []).push(arguments); };

beacons("track", "demo_loaded", location.pathname);

document.addEventListener("DOMContentLoaded", function () {
  document.getElementById("spa").addEventListener("click", function () {
    history.pushState({}, "", "/demo/spa");
    document.getElementById("heading").textContent = "SPA route";
    document.title = "SPA route · Beacons demo";
  });
  document.getElementById("signup").addEventListener("click", function () {
    beacons("track", "signup", "demo", { plan: "pro" });
    if (beacons.trackConversion) beacons.trackConversion("signup-button", "signup");
  });
  // beacon-flags.js (deferred, so loaded by now): the experiment's variation gives the button its
  // label; reading it counts this visitor as exposed, once.
  if (beacons.ready) {
    beacons.ready(function () {
      var config = beacons.flag("signup-button");
      if (config && config.label) document.getElementById("signup").textContent = config.label;
      document.getElementById("variant").textContent = beacons.getVariant("signup-button") || "not in it";
    });
  }
  document.getElementById("throw").addEventListener("click", function () {
    throw new Error("Demo error from the throw button");
  });
  document.getElementById("reject").addEventListener("click", function () {
    Promise.reject(new Error("Demo rejected promise"));
  });
});
