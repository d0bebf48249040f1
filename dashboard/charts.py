"""Figures for the dashboard, built with plotly.graph_objects and shipped as JSON.

A template shows a figure with ``<div class="chart" data-figure="fig-x"></div>`` followed by
``{{ figure|json_script:"fig-x" }}``; ``static/dashboard/charts.js`` draws it. Every piece of
text that may come from a beacon goes through ``plotly_text`` first: Plotly renders a few
HTML tags (<b>, <a href>, <br>, <span style>) in labels, hover text, legends and tick
labels, and decodes entities into plain text nodes, so escaping makes the text show
literally and never act as markup.
"""

import html
from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go

from beacons.buckets import bucket_zone

# Hover and axis formats per granularity (d3-time-format, applied to local wall times).
HOVER_DATE = {"H": "%a %-d %b %Y, %H:%M", "D": "%a %-d %b %Y", "MO": "%B %Y", "Y": "%Y", "M": "%H:%M"}
TICK_DATE = {"H": "%-d %b %H:%M", "D": "%-d %b", "MO": "%b %Y", "Y": "%Y", "M": "%H:%M"}
BARS_UP_TO = 14  # buckets: fewer than this read better as bars than as a line
PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#64748b"]
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def plotly_text(text: object) -> str:
    """Attacker-controlled text made safe for any Plotly string (label, hover, legend, tick).

    ``%`` becomes an entity too, so ``%{y}`` in a name is not a hovertemplate placeholder."""
    return html.escape(str(text), quote=False).replace("%", "&#37;")


def local_wall_time(moment: datetime) -> str:
    """A bucket start as a naive ISO string in the bucket time zone: Plotly's date axis is
    zone-less, so the axis shows the site's local time instead of UTC or the browser's."""
    return moment.astimezone(bucket_zone()).replace(tzinfo=None).isoformat(timespec="minutes")


def bucket_label(moment: datetime, granularity: str) -> str:
    """A bucket in words, in the bucket time zone: "Tue 17 Nov 2026, 14:00", "November 2026"."""
    local = moment.astimezone(bucket_zone())
    if granularity == "Y":
        return f"{local.year}"
    if granularity == "MO":
        return f"{local:%B %Y}"
    if granularity == "D":
        return f"{local:%a} {local.day} {local:%b %Y}"
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


def _layout(
    *, granularity: str, y_title: str, y_peak: int, barmode: str | None = None, legend: bool = False
) -> dict:
    return {
        "template": "none",
        "font": {"family": FONT, "size": 13, "color": "#1f2937"},
        "margin": {"l": 56, "r": 16, "t": 8, "b": 48},
        "height": 320,
        "hovermode": "x unified",
        "showlegend": legend,
        "legend": {"orientation": "h", "y": -0.22, "x": 0},
        "barmode": barmode,
        "xaxis": {
            "type": "date",
            "tickformat": TICK_DATE.get(granularity, "%-d %b"),
            "hoverformat": HOVER_DATE.get(granularity, "%-d %b %Y"),
            "showgrid": False,
            "linecolor": "#9ca3af",
            "title": {"text": f"Time in {plotly_text(bucket_zone().key)}", "font": {"size": 11, "color": "#6b7280"}},
        },
        "yaxis": {
            "title": {"text": plotly_text(y_title), "font": {"size": 11, "color": "#6b7280"}},
            "tickformat": ",d",
            # Counts are whole: with small peaks Plotly would put ticks at 0.5 and label both "0".
            "dtick": 1 if y_peak < 6 else None,
            "rangemode": "tozero",
            "gridcolor": "#e5e7eb",
            "zeroline": False,
        },
    }


def series_figure(
    *,
    name: str,
    granularity: str,
    points: Sequence[tuple[datetime, int]],
    previous: Sequence[tuple[datetime, int]] | None = None,
) -> dict:
    """The main chart: counts per bucket (bars when few buckets, else a line), with an
    optional dashed line for the previous period drawn over the same positions."""
    x = [local_wall_time(moment) for moment, _ in points]
    y = [count for _, count in points]
    label = plotly_text(name)
    if len(points) < BARS_UP_TO:
        main = go.Bar(x=x, y=y, name=label, marker_color=PALETTE[0], hovertemplate="%{y:,}<extra>" + label + "</extra>")
    else:
        main = go.Scatter(
            x=x, y=y, name=label, mode="lines", line={"color": PALETTE[0], "width": 2.5}, fill="tozeroy",
            fillcolor="rgba(37, 99, 235, 0.08)", hovertemplate="%{y:,}<extra>" + label + "</extra>",
        )  # fmt: skip
    traces = [main]
    if previous is not None:
        hover = HOVER_DATE.get(granularity, "%-d %b %Y")
        traces.append(
            go.Scatter(
                x=x[: len(previous)],
                y=[count for _, count in previous],
                customdata=[local_wall_time(moment) for moment, _ in previous],
                name="Previous period",
                mode="lines",
                line={"color": "#6b7280", "width": 1.5, "dash": "dash"},
                hovertemplate="%{y:,} (%{customdata|" + hover + "})<extra>Previous period</extra>",
            )
        )
    peak = max(y + [count for _, count in previous or []], default=0)
    layout = _layout(granularity=granularity, y_title=name, y_peak=peak, legend=previous is not None)
    figure = go.Figure(data=traces, layout=layout)
    return figure.to_plotly_json()


def stacked_figure(*, granularity: str, x: Sequence[datetime], stacks: Sequence[tuple[str, Sequence[int]]]) -> dict:
    """Stacked bars, one colour per named stack (e.g. per event type) over the same buckets."""
    xs = [local_wall_time(moment) for moment in x]
    traces = []
    for index, (name, counts) in enumerate(stacks):
        label = plotly_text(name)
        traces.append(
            go.Bar(
                x=xs, y=list(counts), name=label, marker_color=PALETTE[index % len(PALETTE)],
                hovertemplate="%{y:,}<extra>" + label + "</extra>",
            )  # fmt: skip
        )
    peak = max((sum(column) for column in zip(*(counts for _, counts in stacks))), default=0)
    layout = _layout(granularity=granularity, y_title="Events", y_peak=peak, barmode="stack", legend=True)
    layout["bargap"] = 0.15
    return go.Figure(data=traces, layout=layout).to_plotly_json()
