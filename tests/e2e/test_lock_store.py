"""The production lock store (clinic/lock_store.py) against the real Redis: two Rasa processes,
simulated by two lock store instances used from many threads at once."""
import asyncio
import threading
import uuid

import pytest
from rasa.core.lock_store import RedisLockStore

from clinic.lock_store import AtomicRedisLockStore


def stores(cls, redis_service, n=2):
    return [cls(host=redis_service["host"], port=redis_service["port"], db=0,
                key_prefix="clinictest") for _ in range(n)]


def ours_and_rasa_s(redis_service):
    return stores(AtomicRedisLockStore, redis_service, 1)[0], stores(RedisLockStore, redis_service, 1)[0]


def issue_at_once(cls, redis_service, threads=10):
    """Tickets issued for one conversation by `threads` threads over two stores at once."""
    two = stores(cls, redis_service)
    conversation = f"locktest-{uuid.uuid4().hex}"
    issued = []
    workers = [threading.Thread(target=lambda i=i: issued.append(
        two[i % 2].issue_ticket(conversation))) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    in_lock = [t.number for t in two[0].get_lock(conversation).tickets]
    two[0].delete_lock(conversation)
    return issued, in_lock


def test_simultaneous_tickets_are_all_issued_and_kept(redis_service):
    for _ in range(5):
        issued, in_lock = issue_at_once(AtomicRedisLockStore, redis_service)
        assert len(set(issued)) == 10 and sorted(issued) == sorted(in_lock)


def test_rasa_s_own_redis_lock_store_loses_them(redis_service):
    """Why clinic/lock_store.py exists. If this starts failing, Rasa fixed its lock store and
    profiles/production/endpoints.yml can go back to `type: redis`."""
    results = [issue_at_once(RedisLockStore, redis_service) for _ in range(5)]
    assert any(len(set(issued)) != 10 or sorted(issued) != sorted(in_lock)
               for issued, in_lock in results)


def test_one_conversation_is_handled_by_one_process_at_a_time(redis_service):
    two = stores(AtomicRedisLockStore, redis_service)
    conversation = f"locktest-{uuid.uuid4().hex}"
    inside, most_inside, done, guard = [0], [0], [], threading.Lock()

    async def handle(store):
        async with store.lock(conversation, wait_time_in_seconds=0.01):
            with guard:
                inside[0] += 1
                most_inside[0] = max(most_inside[0], inside[0])
            await asyncio.sleep(0.02)
            with guard:
                inside[0] -= 1
        done.append(True)

    workers = [threading.Thread(target=lambda i=i: asyncio.run(handle(two[i % 2])))
               for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert len(done) == 8, "a message could not get the lock"
    assert most_inside[0] == 1
    assert two[0].get_lock(conversation) is None  # cleaned up after the last one


def ticket_numbers(store, conversation):
    lock = store.get_lock(conversation)
    return None if lock is None else [ticket.number for ticket in lock.tickets]


def test_each_step_leaves_the_lock_as_rasa_s_own_store_does(redis_service):
    """Ours (Lua scripts) and Rasa's RedisLockStore, one step at a time without a race, on a
    lock each wrote itself: same tickets after every step, expired ones dropped alike."""
    ours, rasa_s = ours_and_rasa_s(redis_service)
    steps = [("issue", 60), ("issue", -1), ("issue", 60), ("update",), ("cleanup", 0),
             ("issue", -1), ("update",), ("cleanup", 2), ("issue", 60), ("cleanup", 1),
             ("cleanup", 2)]
    conversations = {store: f"locktest-{uuid.uuid4().hex}" for store in (ours, rasa_s)}
    seen = {ours: [], rasa_s: []}
    for step in steps:
        for store, conversation in conversations.items():
            if step[0] == "issue":
                seen[store].append(store.issue_ticket(conversation, lock_lifetime=step[1]))
            elif step[0] == "update":
                store.update_lock(conversation)
            else:
                store.cleanup(conversation, step[1])
            seen[store].append(ticket_numbers(store, conversation))
    assert seen[ours] == seen[rasa_s]
    assert seen[ours][-1] is None  # the last cleanup deleted the lock


def test_it_reads_the_lock_rasa_s_store_wrote(redis_service):
    ours, rasa_s = ours_and_rasa_s(redis_service)
    conversation = f"locktest-{uuid.uuid4().hex}"
    assert rasa_s.issue_ticket(conversation) == 0
    assert ours.issue_ticket(conversation) == 1
    assert rasa_s.issue_ticket(conversation) == 2
    assert ticket_numbers(ours, conversation) == [0, 1, 2]
    ours.cleanup(conversation, 0)
    assert ticket_numbers(rasa_s, conversation) == [1, 2]
    ours.delete_lock(conversation)


@pytest.mark.parametrize("settings_key_prefix", ["clinic", "clinictest"])
def test_it_is_created_from_the_endpoints_file_settings(redis_service, settings_key_prefix):
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import EndpointConfig

    config = EndpointConfig(url=redis_service["host"], port=str(redis_service["port"]), db="0",
                            password="", key_prefix=settings_key_prefix,
                            type="clinic.lock_store.AtomicRedisLockStore")
    store = LockStore.create(config)
    assert isinstance(store, AtomicRedisLockStore)
    assert store.key_prefix == f"{settings_key_prefix}:lock:"
