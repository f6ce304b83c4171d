"""clinic.tracker_store.ClinicSQLTrackerStore on the real PostgreSQL (the production profile's
store): the tracker cache, the stamp the save computes from the returned ids, other processes'
writes, and the settings of its connections."""
import uuid
from pathlib import Path

import pytest
import yaml
from rasa.shared.core.events import UserUttered

from clinic.tracker_store import ClinicSQLTrackerStore
# the same domain and conversation as the SQLite tests
from tests.unit.test_tracker_store import DOMAIN, run, statements, tracker


@pytest.fixture
def stores(production_settings):
    settings = production_settings

    def store(**extra):
        return ClinicSQLTrackerStore(DOMAIN, dialect="postgresql", **extra,
                                     host=settings["TRACKER_DB_HOST"],
                                     port=settings["TRACKER_DB_PORT"],
                                     db=settings["TRACKER_DB_NAME"],
                                     username=settings["TRACKER_DB_USER"],
                                     password=settings["TRACKER_DB_PASSWORD"])

    return store


def test_cache_and_stamps_on_postgresql(stores):
    first, second = stores(), stores()
    sender = f"pg-cache-{uuid.uuid4().hex[:8]}"
    saved = tracker(sender)
    run(first.save(saved))
    with first.engine.connect() as connection:
        assert first._cache._entries[sender][0] == first._stamp(connection, sender)
    assert run(first.retrieve(sender)) is saved  # handed back from memory
    # the next message went to the other process
    other = run(second.retrieve(sender))
    assert other is not saved and other.get_slot("topic") == "hours"
    other.update(UserUttered("again", {"name": "greet", "confidence": 1.0}))
    run(second.save(other))
    run(first.save(saved))  # nothing new: writes nothing, caches nothing stale
    got = run(first.retrieve(sender))
    assert [e.as_dict() for e in got.events] == [e.as_dict() for e in other.events]


def test_a_message_is_one_read_and_one_insert(stores):
    store = stores()
    sender = f"pg-autocommit-{uuid.uuid4().hex[:8]}"
    sent = statements(store)
    run(store.save(tracker(sender)))  # no BEGIN, no COMMIT; RETURNING gives the new stamp
    assert sent == ["SELECT", "INSERT"]
    other = run(stores().retrieve(sender))
    assert other.get_slot("topic") == "hours"


def test_synchronous_commit_as_the_production_profile_sets_it(stores):
    # profiles/production/endpoints.yml: "off" (README, "Production profile"); unset: PostgreSQL's
    endpoints = Path(__file__).resolve().parents[2] / "profiles" / "production" / "endpoints.yml"
    setting = yaml.safe_load(endpoints.read_text())["tracker_store"]["synchronous_commit"]
    assert setting == "off"
    for store, expected in ((stores(synchronous_commit=setting), "off"), (stores(), "on")):
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == expected
    with pytest.raises(ValueError):
        stores(synchronous_commit="maybe")
