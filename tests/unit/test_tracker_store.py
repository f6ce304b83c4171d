"""clinic.tracker_store.ClinicSQLTrackerStore: the default profile's tracker store (endpoints.yml)."""
import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from rasa.core.tracker_store import SQLTrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from clinic.tracker_store import ClinicSQLTrackerStore

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Domain.from_dict({"intents": ["greet"], "responses": {"utter_greet": [{"text": "Hi"}]},
                           "slots": {"topic": {"type": "text", "mappings": [{"type": "custom"}]}}})


def tracker(sender_id="visitor-1"):
    return DialogueStateTracker.from_events(sender_id, [
        ActionExecuted("action_listen"),
        UserUttered("hello", {"name": "greet", "confidence": 1.0}),
        SlotSet("topic", "hours"),
        ActionExecuted("utter_greet"),
        BotUttered("Hi"),
        ActionExecuted("action_listen"),
    ], slots=DOMAIN.slots)


def run(coroutine):
    return asyncio.run(coroutine)


def pragmas(connection):
    journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    return journal, synchronous


def test_saves_and_retrieves_a_tracker(tmp_path):
    store = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "c.db"))
    saved = tracker()
    run(store.save(saved))
    got = run(store.retrieve("visitor-1"))
    assert got is not None
    assert [e.as_dict() for e in got.events] == [e.as_dict() for e in saved.events]
    assert got.get_slot("topic") == "hours"
    assert run(store.keys()) == ["visitor-1"]
    # a second save appends only the new events
    more = run(store.retrieve("visitor-1"))
    more.update(UserUttered("bye", {"name": "greet", "confidence": 1.0}))
    run(store.save(more))
    assert len(run(store.retrieve("visitor-1")).events) == len(tracker().events) + 1


def test_one_kept_connection_with_wal_and_synchronous_normal(tmp_path):
    store = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "c.db"))
    with store.engine.connect() as connection:
        # 1 = NORMAL (0 OFF, 1 NORMAL, 2 FULL)
        assert pragmas(connection) == ("wal", 1)
        first = connection.connection.dbapi_connection
    run(store.save(tracker()))
    run(store.retrieve("visitor-1"))
    with store.engine.connect() as connection:
        assert connection.connection.dbapi_connection is first  # not opened again
    assert (tmp_path / "c.db-wal").exists()


def test_other_stores_and_connections_read_what_it_wrote(tmp_path):
    db = tmp_path / "c.db"
    writer = ClinicSQLTrackerStore(DOMAIN, db=str(db))
    run(writer.save(tracker()))  # the writer's connection stays open
    # another instance of this store, Rasa's own SQLTrackerStore, and plain sqlite3 (as
    # scripts/purge.py and web/reply_check.py read the `events` table)
    again = ClinicSQLTrackerStore(DOMAIN, db=str(db))
    assert len(run(again.retrieve("visitor-1")).events) == len(tracker().events)
    rasas = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(db))
    assert run(rasas.retrieve("visitor-1")).get_slot("topic") == "hours"
    with sqlite3.connect(db) as plain:
        (count,) = plain.execute("SELECT count(*) FROM events WHERE sender_id = ?",
                                 ("visitor-1",)).fetchone()
    assert count == len(tracker().events)
    # and the writer sees what others changed (as after scripts/purge.py)
    with sa.create_engine(f"sqlite:///{db}").begin() as connection:
        connection.exec_driver_sql("DELETE FROM events")
    assert run(writer.retrieve("visitor-1")) is None


def test_other_dialects_keep_rasa_s_engine_settings_with_autocommit(tmp_path, monkeypatch):
    # no PostgreSQL here (tests/e2e/test_tracker_store_postgresql.py has it): check only that
    # the engine is Rasa's URL and pool settings, autocommitting, not the SQLite one
    made = {}

    def fake_init(self, domain=None, dialect="sqlite", **kwargs):
        self.engine = sa.create_engine("postgresql://u@localhost/db", pool_size=7)
        made["engine"] = self.engine

    monkeypatch.setattr(SQLTrackerStore, "__init__", fake_init)
    monkeypatch.setenv("SQL_POOL_SIZE", "7")  # Rasa's setting, read by create_engine_kwargs
    store = ClinicSQLTrackerStore(DOMAIN, dialect="postgresql", db="db")
    assert store.engine.url == made["engine"].url
    assert store.engine.pool.size() == 7
    assert store.engine.dialect.isolation_level == "AUTOCOMMIT"


def statements(store):
    """The SQL statements the store's engine sends from now on."""
    sent = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda _conn, _cursor, statement, *_: sent.append(statement.split()[0]))
    return sent


def test_a_message_is_saved_without_begin_and_commit(tmp_path):
    store = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "c.db"))
    sent = statements(store)
    run(store.save(tracker()))
    # stamp, INSERT, stamp again (SQLite has no RETURNING in SQLAlchemy 1.4)
    assert sent == ["SELECT", "INSERT", "SELECT"]


def test_a_save_of_several_inserts_is_one_transaction(tmp_path, monkeypatch):
    import clinic.tracker_store as module

    store = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "c.db"))
    monkeypatch.setattr(module, "INSERT_BATCH", 2)
    sent = statements(store)
    run(store.save(tracker()))
    assert sent == ["SELECT", "BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT", "SELECT"]
    assert len(run(store.retrieve("visitor-1")).events) == len(tracker().events)
    # a failure after the first INSERT leaves nothing of that save
    calls, parameters = [], module._parameters

    def failing_parameters(rows):
        calls.append(rows)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return parameters(rows)

    monkeypatch.setattr(module, "_parameters", failing_parameters)
    with pytest.raises(RuntimeError):
        run(store.save(tracker("visitor-2")))
    assert run(store.retrieve("visitor-2")) is None


def test_endpoints_yml_makes_this_store(tmp_path, monkeypatch):
    config = yaml.safe_load((ROOT / "endpoints.yml").read_text())["tracker_store"]
    assert config["db"] == "${TRACKER_SQLITE_DB}"  # unquoted in the file: Rasa substitutes it
    monkeypatch.setenv("TRACKER_SQLITE_DB", str(tmp_path / "conversations.db"))
    monkeypatch.setenv("ACTION_ENDPOINT_URL", "http://127.0.0.1:1/webhook")
    endpoint = read_endpoint_config(str(ROOT / "endpoints.yml"), "tracker_store")
    store = create_tracker_store(endpoint, DOMAIN)
    assert isinstance(store, ClinicSQLTrackerStore)  # not Rasa's in-memory fallback
    assert store.domain is DOMAIN
    run(store.save(tracker()))
    assert os.path.exists(tmp_path / "conversations.db")
    assert run(store.retrieve("visitor-1")).get_slot("topic") == "hours"


# ---------------------------------------------------------------- the tracker cache
def dicts(tracker_):
    return [e.as_dict() for e in tracker_.events]


def test_the_just_saved_tracker_is_handed_back_once(tmp_path):
    store = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "c.db"))
    saved = tracker()
    run(store.save(saved))
    assert run(store.retrieve("visitor-1")) is saved  # no database read, no replay
    again = run(store.retrieve("visitor-1"))  # not saved in between: read from the database
    assert again is not saved and dicts(again) == dicts(saved)


def test_unsaved_changes_are_never_served(tmp_path):
    store = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "c.db"))
    run(store.save(tracker()))
    got = run(store.retrieve("visitor-1"))
    got.update(UserUttered("never saved", {"name": "greet", "confidence": 1.0}))
    assert "never saved" not in str(dicts(run(store.retrieve("visitor-1"))))


def test_writes_by_another_process_are_seen(tmp_path):
    db = str(tmp_path / "c.db")
    first, second = (ClinicSQLTrackerStore(DOMAIN, db=db) for _ in range(2))
    run(first.save(tracker()))
    # the next message of the conversation went to the other process
    other = run(second.retrieve("visitor-1"))
    other.update(UserUttered("from the other process", {"name": "greet", "confidence": 1.0}))
    run(second.save(other))
    got = run(first.retrieve("visitor-1"))
    assert dicts(got) == dicts(other)
    # saving it again appends only the new event: no duplicates
    got.update(ActionExecuted("action_listen"))
    run(first.save(got))
    assert len(run(second.retrieve("visitor-1")).events) == len(other.events) + 1


def test_events_before_a_new_session_are_not_cached(tmp_path):
    # Rasa's retrieve returns only the latest session; a tracker that still holds the earlier
    # session must not be handed back, or its next save would write events twice.
    from rasa.shared.core.events import SessionStarted

    store = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "c.db"))
    saved = tracker()
    run(store.save(saved))
    saved = run(store.retrieve("visitor-1"))
    later = saved.events[-1].timestamp + 10
    for event in (ActionExecuted("action_session_start", timestamp=later),
                  SessionStarted(timestamp=later + 1),
                  ActionExecuted("action_listen", timestamp=later + 2)):
        saved.update(event)
    run(store.save(saved))
    got = run(store.retrieve("visitor-1"))
    assert got is not saved
    assert [e.type_name for e in got.events] == ["session_started", "action"]
    got.update(UserUttered("hi", {"name": "greet", "confidence": 1.0}, timestamp=later + 3))
    run(store.save(got))
    assert len(run(store.retrieve("visitor-1")).events) == 3


def test_the_cache_is_bounded_and_can_be_turned_off(tmp_path):
    store = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "c.db"), cache_conversations=2)
    trackers = [tracker(f"visitor-{n}") for n in range(3)]
    for saved in trackers:
        run(store.save(saved))
    assert run(store.retrieve("visitor-0")) is not trackers[0]  # the oldest went first
    assert run(store.retrieve("visitor-2")) is trackers[2]
    off = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "d.db"), cache_conversations=0)
    saved = tracker()
    run(off.save(saved))
    assert run(off.retrieve("visitor-1")) is not saved


def test_rows_are_written_as_rasas_store_writes_them(tmp_path):
    ours = ClinicSQLTrackerStore(DOMAIN, db=str(tmp_path / "ours.db"))
    rasas = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "rasas.db"))
    first = [event for event in tracker().events]
    for number, event in enumerate(first):
        event.timestamp = 1000.0 + number
    more = [UserUttered("bye", {"name": "greet", "confidence": 1.0}, timestamp=2000.0),
            ActionExecuted("utter_greet", timestamp=2001.0)]
    for store in (ours, rasas):
        run(store.save(DialogueStateTracker.from_events("visitor-1", first, slots=DOMAIN.slots)))
        later = run(store.retrieve("visitor-1"))
        for event in more:
            later.update(event)
        run(store.save(later))

    def rows(name):
        with sqlite3.connect(tmp_path / name) as db:
            return db.execute("SELECT id, sender_id, type_name, timestamp, intent_name, "
                              "action_name, data FROM events ORDER BY id").fetchall()

    assert len(rows("ours.db")) == len(first) + len(more)
    assert rows("ours.db") == rows("rasas.db")
