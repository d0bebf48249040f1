"""Where counter increments go: chosen by ``BEACONS_SINK``.

A sink takes the merged increments of one request. ``direct`` writes them at once with
one upsert statement.
"""

from collections.abc import Mapping

from django.conf import settings

from .counting import CounterKey, aggregates_add


class DirectSink:
    name = "direct"

    def add(self, increments: Mapping[CounterKey, int]) -> None:
        aggregates_add(increments=increments)


_SINKS: dict[str, object] = {}


def get_sink():
    name = settings.BEACONS_SINK
    sink = _SINKS.get(name)
    if sink is None:
        if name == "direct":
            sink = DirectSink()
        else:
            raise ValueError(f"unknown BEACONS_SINK {name!r}: use direct, memory or redis")
        _SINKS[name] = sink
    return sink
