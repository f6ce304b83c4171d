"""Benchmark experiment only (bench/endpoints-tuned.yml, `--servers ours-tuned`): not shipped.

`CachedEventsTrackerStore`: the default profile's tracker store (clinic.tracker_store), and
Rasa's Event.resolve_by_type cached. Rasa 3.6 walks all Event subclasses (inspect.isabstract on
each) for every event it deserialises; py-spy put that at about 11% of the server's time
(bench/README.md, "Profiling").
"""
import functools
from typing import Any

from clinic.tracker_store import ClinicSQLTrackerStore


def cache_event_resolution() -> None:
    from rasa.shared.core import events

    original = events.Event.resolve_by_type
    if getattr(original, "cache_info", None):
        return

    @functools.lru_cache(maxsize=None)
    def resolve_by_type(type_name, default=None):
        return original(type_name, default)

    events.Event.resolve_by_type = staticmethod(resolve_by_type)


class CachedEventsTrackerStore(ClinicSQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cache_event_resolution()
        super().__init__(*args, **kwargs)
