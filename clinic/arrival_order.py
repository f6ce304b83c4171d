"""Lets the messages a Rasa process receives into Rasa one at a time, in the order they arrived.

Why: Rasa's handling of a message is CPU work that rarely waits, except for the action server.
Without a turn order, a message that waits for the action server goes to the back of the event
loop's queue when the answer comes and waits there behind all the messages that arrived
meanwhile: under 10 users, such messages took twice the median time (bench/README.md). In
arrival order each message waits only for those ahead of it; the cost is that the process idles
while one message waits for the action server (about a millisecond).

A message never waits longer than `max_wait_s` for its turn: if the one ahead is stuck (e.g. an
action server that accepts connections but never answers), the others go ahead without a turn
rather than queueing behind it until the reply timeout.
"""
import asyncio
import contextlib
from typing import AsyncIterator, Optional


class ArrivalOrder:
    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        self._lock: Optional[asyncio.Lock] = None  # made in the server's event loop

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[bool]:
        """Waits for this message's turn (asyncio.Lock wakes its waiters first come, first
        served); yields whether it got one or went ahead after `max_wait_s`."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        try:
            await asyncio.wait_for(self._lock.acquire(), self.max_wait_s)
            got_turn = True
        except asyncio.TimeoutError:
            got_turn = False
        try:
            yield got_turn
        finally:
            if got_turn:
                self._lock.release()
