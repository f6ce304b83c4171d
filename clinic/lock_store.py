"""Rasa's Redis lock store, made safe for several Rasa processes: the production profile's.

A conversation's lock is a queue of tickets kept as one Redis value. Rasa Open Source's
RedisLockStore changes it by reading it, changing it in Python and writing it back; two Rasa
processes handling messages of the same conversation at the same moment can then overwrite each
other's ticket: both handle the conversation at once, or one gives up with "Could not acquire
lock" (the visitor gets the clinic's number instead of an answer). Seen with two processes and
10 simultaneous messages of one conversation (tests/e2e/test_production.py); Rasa's issue
#9213. Rasa Pro's ConcurrentRedisLockStore is not in Rasa Open Source.

This subclass does each of those read-change-write steps as one Redis transaction (WATCH/MULTI,
retried when another process changed the lock meanwhile). Same settings, same keys and values
as RedisLockStore: endpoints.yml only names this class instead of `redis`.
"""
import json
import logging
from typing import Any, Callable, Optional, Text, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

Change = Callable[[Optional[TicketLock]], Tuple[Any, Optional[TicketLock]]]


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        # Rasa creates a custom lock store with its endpoints.yml section only.
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)

    def _change(self, conversation_id: Text, change: Change) -> Any:
        """Applies `change` (lock or None -> result, new lock or None to delete) atomically."""
        import redis

        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    stored = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(stored)) if stored else None
                    result, lock = change(lock)
                    pipe.multi()
                    if lock is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, lock.dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another process changed this lock meanwhile: start again

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: Optional[TicketLock]) -> Tuple[int, TicketLock]:
            lock = lock or TicketLock(conversation_id)
            return lock.issue_ticket(lock_lifetime), lock

        try:
            return self._change(conversation_id, change)
        except Exception as error:  # as RedisLockStore: any failure is a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{error}")

    def update_lock(self, conversation_id: Text) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[None, Optional[TicketLock]]:
            if lock is not None:
                lock.remove_expired_tickets()
            return None, lock

        self._change(conversation_id, change)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[None, Optional[TicketLock]]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return None, lock

        self._change(conversation_id, change)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Removes the ticket, and the lock when no one else waits for it: in one step."""
        def change(lock: Optional[TicketLock]) -> Tuple[None, Optional[TicketLock]]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return None, lock if lock.is_someone_waiting() else None

        self._change(conversation_id, change)
