"""Rasa's Redis lock store, made safe for several Rasa processes: the production profile's.

A conversation's lock is a queue of tickets kept as one Redis value. Rasa Open Source's
RedisLockStore changes it by reading it, changing it in Python and writing it back; two Rasa
processes handling messages of the same conversation at the same moment can then overwrite each
other's ticket: both handle the conversation at once, or one gives up with "Could not acquire
lock" (the visitor gets the clinic's number instead of an answer). Seen with two processes and
10 simultaneous messages of one conversation (tests/e2e/test_production.py); Rasa's issue
#9213. Rasa Pro's ConcurrentRedisLockStore is not in Rasa Open Source.

This subclass does each read-change-write step as one Lua script, which Redis runs atomically:
one round trip per step, no retries. A message whose conversation is free costs two round trips
(issue a ticket and learn it is being served; clean up) instead of Rasa's six. Same settings,
same keys and the same JSON values as RedisLockStore: endpoints.yml only names this class
instead of `redis`, and Rasa's own waiting loop still handles a conversation that is busy.
"""
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Optional, Text, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

# Shared by the scripts: KEYS[1] is the lock's key, ARGV[1] the time now (seconds, as Python's
# time.time()). Tickets stay the JSON strings Rasa wrote; a ticket has expired when now > expires.
_LOCK_FUNCTIONS = """
local function load_tickets(stored, now)
  local kept = {}
  for _, text in ipairs(stored.tickets) do
    local ticket = cjson.decode(text)
    if ticket.expires >= now then table.insert(kept, {text = text, number = ticket.number}) end
  end
  return kept
end
local function dumps(conversation_id, tickets)
  local texts = {}
  for i, ticket in ipairs(tickets) do texts[i] = cjson.encode(ticket.text) end
  return '{"conversation_id": ' .. cjson.encode(conversation_id) .. ', "tickets": ['
    .. table.concat(texts, ', ') .. ']}'
end
local now = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
local stored = raw and cjson.decode(raw)
"""

# ARGV[2]: conversation id, ARGV[3]: the new ticket's expiry as JSON. Returns the ticket's number
# and the lock as saved, as TicketLock.issue_ticket followed by a save.
_ISSUE_TICKET = _LOCK_FUNCTIONS + """
local conversation_id = stored and stored.conversation_id or ARGV[2]
local tickets = stored and load_tickets(stored, now) or {}
local number = #tickets > 0 and tickets[#tickets].number + 1 or 0
table.insert(tickets, {number = number,
  text = '{"number": ' .. string.format('%d', number) .. ', "expires": ' .. ARGV[3] .. '}'})
local lock = dumps(conversation_id, tickets)
redis.call('SET', KEYS[1], lock)
return {number, lock}
"""

# Drops expired tickets and saves the lock, as RedisLockStore.update_lock.
_UPDATE_LOCK = _LOCK_FUNCTIONS + """
if stored then redis.call('SET', KEYS[1], dumps(stored.conversation_id, load_tickets(stored, now))) end
"""

# ARGV[2]: a ticket number. Removes that ticket (and expired ones); deletes the lock when no
# ticket is left, else saves it: RedisLockStore.cleanup in one step.
_CLEANUP = _LOCK_FUNCTIONS + """
if not stored then return end
local kept = {}
for _, ticket in ipairs(load_tickets(stored, now)) do
  if ticket.number ~= tonumber(ARGV[2]) then table.insert(kept, ticket) end
end
if #kept == 0 then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], dumps(stored.conversation_id, kept)) end
"""


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        # Rasa creates a custom lock store with its endpoints.yml section only.
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)
        # register_script sends EVALSHA, and the script itself only if Redis lost it.
        self._issue_ticket = self.red.register_script(_ISSUE_TICKET)
        self._update_lock = self.red.register_script(_UPDATE_LOCK)
        self._cleanup = self.red.register_script(_CLEANUP)

    def _issue(self, conversation_id: Text, lock_lifetime: float) -> Tuple[int, TicketLock]:
        """Issues a ticket; returns its number and the lock as saved with it."""
        now = time.time()
        try:
            number, saved = self._issue_ticket(
                keys=[self.key_prefix + conversation_id],
                args=[repr(now), conversation_id, json.dumps(now + lock_lifetime)])
        except Exception as error:  # as RedisLockStore: any failure is a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{error}")
        return int(number), TicketLock.from_dict(json.loads(saved))

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        return self._issue(conversation_id, lock_lifetime)[0]

    @asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = 1) -> AsyncGenerator[TicketLock, None]:
        """As LockStore.lock, without reading the lock again when the new ticket is served."""
        ticket, lock = self._issue(conversation_id, lock_lifetime)
        try:
            if lock.is_locked(ticket):  # others are ahead: Rasa's own waiting loop
                lock = await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
            yield lock
        finally:
            self.cleanup(conversation_id, ticket)

    def update_lock(self, conversation_id: Text) -> None:
        self._update_lock(keys=[self.key_prefix + conversation_id], args=[repr(time.time())])

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Removes the ticket, and the lock when no one else waits for it: in one step."""
        self._cleanup(keys=[self.key_prefix + conversation_id],
                      args=[repr(time.time()), ticket_number])
