"""Keeps each conversation's last saved tracker in the Rasa process, for its next message.

Why: rebuilding a tracker from the database for every message (fetch all events of the
session, parse their JSON, find each event's class, replay them) was the largest part of the
Rasa server's time per message (bench/README.md, "Profiling"), and it grows with the length of
the conversation. The tracker Rasa has just saved is the one it will ask for next.

Correctness, including with several Rasa processes on one database (production profile):
- a cached tracker is used only while the database holds exactly the events it was saved with:
  the stamp (number of events of the latest session, highest event id) is read with one small
  query on every retrieve and compared. Another process's message, a purge or any other write
  changes the stamp, and the tracker is then read from the database as before;
- `retrieve` hands the cached object over and forgets it (Rasa changes the tracker it gets);
  only `save` puts one back. A caller that never saves (a failed message, a read through the
  HTTP API) leaves nothing behind, so unsaved events can never be served;
- a tracker whose events are not exactly what `retrieve` would return from the database (e.g.
  the events before a session start, which Rasa's query leaves out) is not cached.

Bounded: the `max_conversations` most recently saved conversations (least recently used go first).
"""
from collections import OrderedDict
from typing import Optional, Text, Tuple

from rasa.shared.core.trackers import DialogueStateTracker

Stamp = Tuple[int, Optional[int]]  # (events in the latest session, highest event id)


class TrackerCache:
    def __init__(self, max_conversations: int) -> None:
        self._max = max_conversations
        self._entries: "OrderedDict[Text, Tuple[Stamp, DialogueStateTracker]]" = OrderedDict()

    def take(self, sender_id: Text, stamp: Stamp) -> Optional[DialogueStateTracker]:
        """The cached tracker if the database still holds its events; it leaves the cache."""
        entry = self._entries.pop(sender_id, None)
        if entry is None or entry[0] != stamp:
            return None
        return entry[1]

    def put(self, tracker: DialogueStateTracker, stamp: Stamp) -> None:
        """Keeps a just-saved tracker, if it is what the database would give back."""
        self._entries.pop(tracker.sender_id, None)
        if self._max <= 0 or len(tracker.events) != stamp[0]:
            return
        self._entries[tracker.sender_id] = (stamp, tracker)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def forget(self, sender_id: Text) -> None:
        self._entries.pop(sender_id, None)
