"""Figures for the dashboard, in Plotly's JSON figure format, built on the server.

A template shows a figure with ``<div class="chart" data-figure="fig-x"></div>`` followed by
``{{ figure|json_script:"fig-x" }}``; ``static/dashboard/charts.js`` draws it. Every piece of
text that may come from a beacon goes through ``plotly_text`` first: Plotly renders a few
HTML tags (<b>, <a href>, <br>, <span style>) in labels, hover text, legends and tick
labels, and decodes entities into plain text nodes, so escaping makes the text show
literally and never act as markup.
"""

import html
import zlib
from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache

import plotly.io as pio
from plotly.subplots import make_subplots

from beacons.counting.buckets import bucket_zone
from beacons.models import Granularity as G

# Hover and axis formats per granularity (d3-time-format, applied to local wall times).
HOVER_DATE = {G.HOUR: "%a %-d %b %Y, %H:%M", G.DAY: "%a %-d %b %Y", G.MONTH: "%B %Y", G.YEAR: "%Y", G.MINUTE: "%H:%M"}
TICK_DATE = {G.HOUR: "%-d %b %H:%M", G.DAY: "%-d %b", G.MONTH: "%b %Y", G.YEAR: "%Y", G.MINUTE: "%H:%M"}
BARS_UP_TO = 14  # buckets: fewer than this read better as bars than as a line
# Sixteen distinguishable colours; a type's colour is picked by a hash of its slug (see
# type_colour), ordered so the demo's types (page views blue, errors red, downloads amber,
# sign-ups green) land on distinct ones.
PALETTE = [
    "#0ea5e9",
    "#dc2626",
    "#8b5cf6",
    "#84cc16",
    "#2563eb",
    "#ec4899",
    "#14b8a6",
    "#64748b",
    "#a16207",
    "#f97316",
    "#4f46e5",
    "#be185d",
    "#f59e0b",
    "#0f766e",
    "#a855f7",
    "#10b981",
]
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
# The "none" template as Plotly's JSON holds it (plotly.js takes a template object, not a name).
NO_TEMPLATE = pio.templates["none"].to_plotly_json()


def _without_none(value):
    """``value`` without the keys whose value is None, at any depth (as Plotly's JSON leaves them out)."""
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    return value


def _figure(traces: list[dict], layout: dict) -> dict:
    """A figure as ``go.Figure(...).to_plotly_json()`` gives it, without building graph objects:
    their validation cost more than the rest of a 720-point chart panel (about 50 ms a figure)."""
    layout = _without_none({**layout, "template": NO_TEMPLATE})
    return {"data": [_without_none(trace) for trace in traces], "layout": layout}


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
    if granularity == G.YEAR:
        return f"{local.year}"
    if granularity == G.MONTH:
        return f"{local:%B %Y}"
    if granularity == G.DAY:
        return _day_words(local.date())
    return f"{_day_words(local.date())}, {local.hour:02d}:{local.minute:02d}"


@lru_cache(maxsize=1024)
def _day_words(day: date) -> str:
    # Cached: the 720 hours of a 30-day chart name 30 days (strftime was most of their labels' cost).
    return f"{day:%a} {day.day} {day:%b %Y}"


OTHER_TYPES_COLOUR = "#9ca3af"  # grey: "Other types" is no type of its own


def type_colour(slug: str) -> str:
    """The one colour an event type has on every chart, whatever else is shown beside it
    (slug "" is the "Other types" sum)."""
    if not slug:
        return OTHER_TYPES_COLOUR
    return PALETTE[zlib.crc32(slug.encode()) % len(PALETTE)]


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def tick_labels(moments: Sequence[datetime], granularity: str) -> list[str]:
    """One short, distinct axis label per bucket: "14:00" within a day, "2 Dec", "Dec 2026", "2026".

    The day or year is added when the buckets span several; an hour the clocks repeat (DST ends)
    gets its UTC offset, so no two buckets ever share a label."""
    tz = bucket_zone()
    local = [moment.astimezone(tz) for moment in moments]
    days = {moment.date() for moment in local}
    years = {moment.year for moment in local}
    if granularity == G.YEAR:
        labels = [f"{moment.year}" for moment in local]
    elif granularity == G.MONTH:
        labels = [f"{moment:%b %Y}" for moment in local]
    elif granularity == G.DAY:
        labels = [f"{moment.day} {moment:%b}" + (f" {moment.year}" if len(years) > 1 else "") for moment in local]
    else:
        labels = [(f"{moment.day} {moment:%b} " if len(days) > 1 else "") + f"{moment:%H:%M}" for moment in local]
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return [f"{label} {moment:%z}"[:-2] if seen[label] > 1 else label for label, moment in zip(labels, local)]


def _x_axis(moments: Sequence[datetime], granularity: str, walls: list[str] | None = None) -> dict:
    # Every bucket gets its own label; charts.js keeps every n-th one that fits the width, so
    # labels never repeat, never mean half a bucket, and never collide. ``walls``: the moments'
    # ``local_wall_time`` when the caller has them already (the traces' x).
    return {
        "tickmode": "array",
        "tickvals": walls if walls is not None else [local_wall_time(moment) for moment in moments],
        "ticktext": [plotly_text(label) for label in tick_labels(moments, granularity)],
        "tickangle": 0,
        "automargin": True,
    }


def _layout(
    *,
    granularity: str,
    y_title: str,
    y_peak: int,
    moments: Sequence[datetime] = (),
    walls: list[str] | None = None,
    barmode: str | None = None,
    legend: bool = False,
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
            **_x_axis(moments, granularity, walls),
        },
        "yaxis": {
            # automargin + standoff: Plotly moves the title clear of the widest tick label.
            "title": {"text": plotly_text(y_title), "font": {"size": 11, "color": "#6b7280"}, "standoff": 10},
            "automargin": True,
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
    notes: Sequence[str] | None = None,
    colour: str = PALETTE[4],
    number_format: str = ",",
    suffix: str = "",
) -> dict:
    """The main chart: counts (or a rate: ``number_format`` in d3's words and a ``suffix``) per
    bucket (bars when few buckets, else a line), with an optional dashed line for the previous
    period drawn over the same positions. A value of None (no rate without visits) is a gap.

    ``notes`` marks partial buckets (" so far" for the running one, or cut by the dates): a
    partial bar is lighter, a partial stretch of line dashed, and the hover says so."""
    x = [local_wall_time(moment) for moment, _ in points]
    y = [count for _, count in points]
    notes = list(notes or [""] * len(points))
    partial = [bool(note) for note in notes]
    label = plotly_text(name)
    value = "%{y:" + number_format + "}" + plotly_text(suffix)
    hover = value + "%{customdata}<extra>" + label + "</extra>"
    if len(points) < BARS_UP_TO:
        traces = [
            dict(
                type="bar",
                x=x,
                y=y,
                name=label,
                customdata=notes,
                hovertemplate=hover,
                marker={
                    "color": colour,
                    "opacity": [0.4 if p else 1 for p in partial],
                    "line": {"color": colour, "width": [1.5 if p else 0 for p in partial]},
                },
            )
        ]
    else:
        whole = [count if not p else None for count, p in zip(y, partial)]
        near_partial = [
            p or (i > 0 and partial[i - 1]) or (i + 1 < len(partial) and partial[i + 1]) for i, p in enumerate(partial)
        ]
        traces = [
            dict(
                type="scatter",
                x=x,
                y=whole,
                name=label,
                mode="lines",
                line={"color": colour, "width": 2.5},
                fill="tozeroy",
                fillcolor=_rgba(colour, 0.08),
                hovertemplate=hover,
                customdata=notes,
            ),
            dict(
                type="scatter",
                x=x,
                y=[count if near else None for count, near in zip(y, near_partial)],
                mode="lines",
                showlegend=False,
                line={"color": colour, "width": 2, "dash": "dot"},
                hoverinfo="skip",
                name=label + " (partial)",
            ),
            dict(
                type="scatter",
                x=[xi for xi, p in zip(x, partial) if p],
                y=[yi for yi, p in zip(y, partial) if p],
                mode="markers",
                customdata=[note for note in notes if note],
                showlegend=False,
                name=label + " (partial)",
                marker={"color": "#ffffff", "size": 7, "line": {"color": colour, "width": 2}},
                hovertemplate=hover,
            ),
        ]
    if previous is not None:
        hover_date = HOVER_DATE.get(granularity, "%-d %b %Y")
        traces.append(
            dict(
                type="scatter",
                x=x[: len(previous)],
                y=[count for _, count in previous],
                customdata=[local_wall_time(moment) for moment, _ in previous],
                name="Period before",
                mode="lines",
                line={"color": "#6b7280", "width": 1.5, "dash": "dash"},
                hovertemplate=value + " (%{customdata|" + hover_date + "})<extra>Period before</extra>",
            )
        )
    peak = max((count for count in y + [count for _, count in previous or []] if count is not None), default=0)
    moments = [moment for moment, _ in points]
    layout = _layout(
        granularity=granularity, y_title=name, y_peak=peak, moments=moments, walls=x, legend=previous is not None
    )
    if number_format != ",":  # a rate: not whole numbers, and its unit on the ticks
        layout["yaxis"].update({"tickformat": number_format, "ticksuffix": suffix, "dtick": None})
    return _figure(traces, layout)


def stacked_figure(
    *,
    granularity: str,
    x: Sequence[datetime],
    stacks: Sequence[tuple[str, str, Sequence[int | None]]],
    y_title: str = "Events",
    colours: dict[str, str] | None = None,
) -> dict:
    """Stacked bars over the same buckets, one per (name, slug, counts), each in its type's colour
    or in ``colours[slug]`` (a count of None, not known, is no bar)."""
    xs = [local_wall_time(moment) for moment in x]
    traces = []
    for name, slug, counts in stacks:
        traces.append(_type_bars(name=name, slug=slug, counts=counts, xs=xs, colour=(colours or {}).get(slug)))
    peak = max((sum(n or 0 for n in column) for column in zip(*(counts for _, _, counts in stacks))), default=0)
    layout = _layout(granularity=granularity, y_title=y_title, y_peak=peak, moments=x, barmode="stack", legend=True)
    layout["bargap"] = 0.15
    return _figure(traces, layout)


def _type_bars(*, name: str, slug: str, counts: Sequence[int], xs: list, colour: str | None = None) -> dict:
    """One event type's bars, in its own colour (or ``colour``), its name escaped for Plotly."""
    label = plotly_text(name)
    return dict(
        type="bar",
        x=xs,
        y=list(counts),
        name=label,
        marker={"color": colour or type_colour(slug)},
        hovertemplate="%{y:,}<extra>" + label + "</extra>",
    )


def small_multiples_figure(
    *, granularity: str, x: Sequence[datetime], stacks: Sequence[tuple[str, str, Sequence[int]]]
) -> dict:
    """One small chart per type, one under the other, each on its own y scale over the same
    buckets: a type counted ten times a day is as readable as one counted thousands of times."""
    xs = [local_wall_time(moment) for moment in x]
    rows = max(len(stacks), 1)
    figure = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.35 / rows,
        subplot_titles=[plotly_text(name) for name, _, _ in stacks],
    )
    for row, (name, slug, counts) in enumerate(stacks, start=1):
        figure.add_trace(
            _type_bars(name=name, slug=slug, counts=counts, xs=xs),
            row=row,
            col=1,
        )
        figure.update_yaxes(
            row=row,
            col=1,
            tickformat=",d",
            rangemode="tozero",
            gridcolor="#e5e7eb",
            zeroline=False,
            automargin=True,
            nticks=4,
            dtick=1 if max(counts, default=0) < 4 else None,
        )
    base = _layout(granularity=granularity, y_title="", y_peak=0, moments=x)
    figure.update_layout(
        template="none",
        font=base["font"],
        margin={**base["margin"], "t": 28},
        height=90 + 120 * rows,
        showlegend=False,
        hovermode="x unified",
        bargap=0.15,
    )
    figure.update_xaxes(type="date", showgrid=False, linecolor="#9ca3af", **_x_axis(x, granularity))
    figure.update_xaxes(row=rows, col=1, title=base["xaxis"]["title"])
    figure.update_annotations(font={"size": 12, "color": "#374151"}, x=0, xanchor="left")
    return figure.to_plotly_json()


# An experiment variation's uplift against control: likely better, likely worse, or neither yet.
UPLIFT_COLOURS = {"better": "#059669", "worse": "#dc2626", "unclear": "#64748b"}
UPLIFT_NAME_LENGTH = 48  # characters of a variation's name above its row (the hover has all of it)


def uplift_intervals_figure(*, intervals: Sequence[tuple[str, float, float, float, str]]) -> dict:
    """Each variation's relative uplift against control: a point with its 95 % interval as a horizontal
    error bar, one row per (name, uplift, low, high, tone), the first at the top, and a line at zero
    (control). Uplifts are fractions (0.12 is +12 %); ``tone`` is a key of UPLIFT_COLOURS.

    Each name is written above its row rather than beside it, so on a phone the intervals keep the
    whole width; rows sit at positions 0, 1, … so two variations of one name stay two rows."""
    traces, labels = [], []
    for row, (name, uplift, low, high, tone) in enumerate(intervals):
        colour = UPLIFT_COLOURS[tone]
        escaped = plotly_text(name)
        traces.append(
            dict(
                type="scatter",
                mode="markers",
                x=[uplift * 100],
                y=[row],
                customdata=[[low * 100, high * 100]],
                name=escaped,
                marker={"color": colour, "size": 11},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [(high - uplift) * 100],
                    "arrayminus": [(uplift - low) * 100],
                    "color": colour,
                    "thickness": 2.5,
                    "width": 7,
                },
                hovertemplate="%{x:+.1f} % (95 % interval %{customdata[0]:+.1f} % to %{customdata[1]:+.1f} %)"
                "<extra>" + escaped + "</extra>",
            )
        )
        shown = name if len(name) <= UPLIFT_NAME_LENGTH else name[: UPLIFT_NAME_LENGTH - 1] + "…"
        labels.append(
            {
                "x": 0,
                "xref": "paper",
                "xanchor": "left",
                "y": row - 0.45,
                "yref": "y",
                "yanchor": "middle",
                "text": plotly_text(shown),
                "showarrow": False,
                "font": {"size": 12, "color": "#374151"},
                "bgcolor": "rgba(255, 255, 255, 0.85)",
            }
        )
    edges = [0.0] + [edge * 100 for _, _, low, high, _ in intervals for edge in (low, high)]
    padding = max((max(edges) - min(edges)) * 0.06, 1.0)
    control = {
        "x": 0,
        "xref": "x",
        "y": 1,
        "yref": "paper",
        "yanchor": "bottom",
        "text": "control",
        "showarrow": False,
        "font": {"size": 11, "color": "#6b7280"},
    }
    layout = {
        "font": {"family": FONT, "size": 13, "color": "#1f2937"},
        "margin": {"l": 12, "r": 16, "t": 22, "b": 44},
        "height": 80 + 64 * len(intervals),
        "showlegend": False,
        "hovermode": "closest",
        "xaxis": {
            "range": [min(edges) - padding, max(edges) + padding],
            "ticksuffix": " %",
            "nticks": 6,
            "zeroline": True,
            "zerolinecolor": "#111827",
            "zerolinewidth": 1.5,
            "gridcolor": "#e5e7eb",
            "automargin": True,
            "fixedrange": True,
            "title": {
                "text": "Relative uplift vs control, 95 &#37; interval",
                "font": {"size": 11, "color": "#6b7280"},
            },
        },
        "yaxis": {
            "range": [len(intervals) - 0.5, -0.9],  # the first variation at the top, room for its name
            "showticklabels": False,
            "showgrid": False,
            "zeroline": False,
            "fixedrange": True,
        },
        "annotations": [control, *labels],
    }
    return _figure(traces, layout)
