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

  // The server gives every bucket its own label (tickvals/ticktext); keep every n-th one so the
  // labels that are shown fit side by side at this width: none repeats, none overlaps.
  var CHAR_PX = 7.5, GAP_PX = 18, SIDE_PX = 90;

  function thinTicks(element, layout) {
    var width = Math.max(element.clientWidth - SIDE_PX, 120);
    Object.keys(layout).forEach(function (key) {
      var axis = layout[key];
      if (!/^xaxis\d*$/.test(key) || !axis || axis.tickmode !== "array") return;
      var all = element.allTicks = element.allTicks || {};
      if (!all[key]) all[key] = { values: axis.tickvals || [], texts: axis.ticktext || [] };
      var values = all[key].values, texts = all[key].texts;
      var longest = texts.reduce(function (most, text) { return Math.max(most, String(text).length); }, 1);
      var fits = Math.max(Math.floor(width / (longest * CHAR_PX + GAP_PX)), 1);
      var stride = Math.max(Math.ceil(values.length / fits), 1);
      axis.tickvals = values.filter(function (_, i) { return i % stride === 0; });
      axis.ticktext = texts.filter(function (_, i) { return i % stride === 0; });
    });
  }

  function redrawTicks() {
    if (!window.Plotly) return;
    Array.prototype.forEach.call(document.querySelectorAll("[data-drawn='true']"), function (element) {
      if (!element.layout) return;
      thinTicks(element, element.layout);
      window.Plotly.relayout(element, element.layout);
    });
  }

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
      thinTicks(element, layout);
      element.setAttribute("data-drawn", "true");
      window.Plotly.newPlot(element, figure.data || [], layout, CONFIG);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(redrawTicks, 150);
  });

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
