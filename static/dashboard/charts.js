/* Draws every [data-figure] element from the JSON in the <script type="application/json"> whose
 * id it names, after page load and after each htmx swap. Also pauses polling panels
 * ([data-poll-when-visible]) while the tab is hidden and refreshes them when it is shown again.
 * No inline scripts are needed anywhere, so a strict Content-Security-Policy holds. */
(function () {
  "use strict";
  var CONFIG = {
    responsive: true,
    displaylogo: false,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  };

  function draw(root) {
    if (!window.Plotly) return;
    var charts = (root || document).querySelectorAll("[data-figure]");
    Array.prototype.forEach.call(charts, function (element) {
      if (element.getAttribute("data-drawn") === "true") return;
      var source = document.getElementById(element.getAttribute("data-figure"));
      if (!source) return;
      var figure;
      try {
        figure = JSON.parse(source.textContent);
      } catch (error) {
        return;
      }
      var layout = figure.layout || {};
      layout.autosize = true;
      element.setAttribute("data-drawn", "true");
      window.Plotly.newPlot(element, figure.data || [], layout, CONFIG);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });

  // htmx's trigger filters ("every 10s [cond]") need eval, which the CSP forbids: skip polls here.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail && event.detail.elt;
    if (document.hidden && element && element.hasAttribute("data-poll-when-visible")) event.preventDefault();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    Array.prototype.forEach.call(document.querySelectorAll("[data-poll-when-visible]"), function (element) {
      window.htmx.trigger(element, "tabvisible");
    });
  });

  // Print: redraw at the paper's width so charts are not cut off.
  window.addEventListener("beforeprint", function () {
    if (!window.Plotly) return;
    Array.prototype.forEach.call(document.querySelectorAll("[data-drawn='true']"), function (element) {
      window.Plotly.Plots.resize(element);
    });
  });
})();
