"""Rasa's SQL tracker store, as both profiles use it: failures reported, the last saved tracker
of each conversation kept in the process (clinic/tracker_cache.py), SQLite in WAL mode.

Failures: Rasa wraps every tracker store in a FailSafeTrackerStore which, when the database
fails, carries on with an empty in-memory conversation: the visitor would get an answer out of
context and the message would not be kept, with nothing to show it. Here a failed database call
is noted for the message being handled (`watch_failures`), and the REST channel
(clinic/rest_channel.py) answers that message with a clear error and the clinic's number.

SQLite (the default profile):

Rasa's SQLTrackerStore on an SQLite file is slow for two reasons (bench/README.md,
"Profiling": about half of the Rasa server's time per message):
- SQLAlchemy 1.4 gives a file SQLite database a NullPool, so every retrieve and every save opens
  the file again (and reads the schema again);
- in SQLite's default rollback-journal mode with synchronous=FULL, every commit (one per saved
  message) writes a journal and fsyncs several times.

This subclass, for SQLite only, keeps one connection open (a QueuePool of one: the same
connection is reused while Rasa's event loop handles messages one store call at a time; if two
uses ever overlap, e.g. from another thread, the second gets a connection of its own for that
use, closed after it, rather than sharing a transaction, which is what SQLAlchemy 2.0 does for
file SQLite too) and sets on each new connection:
- PRAGMA journal_mode=WAL: a commit appends to `<db>-wal`; readers in other processes
  (scripts/purge.py, the staff page's web/reply_check.py) do not block the server or the other
  way round. The database is then three files: `<db>`, `<db>-wal`, `<db>-shm` (copy or delete
  them together);
- PRAGMA synchronous=NORMAL: fsync only at WAL checkpoints, not at each commit.

Trade-off: a crash of the process (or of Rasa) loses nothing that was committed, but a power
cut or an operating system crash can lose the last few messages (those committed since the last
checkpoint); the database itself stays consistent. Fine for a clinic's chat assistant; not for
a record that must never lose a write (use the production profile's PostgreSQL).

PostgreSQL (the production profile): Rasa's engine, plus the optional `synchronous_commit`
setting for this store's connections. The production profile sets it to "off": a commit then
returns before PostgreSQL has flushed its WAL, which cut the time the Rasa processes waited for
commits by about two thirds; a crash of PostgreSQL or of its machine can lose the last fraction
of a second of messages (at most 3 x wal_writer_delay, 600 ms by default), never corrupt them.
For a record that must never lose a write, remove the setting (PostgreSQL's default, "on").

Same table and schema as SQLTrackerStore (`events`), same settings, plus `cache_conversations`
(how many conversations' trackers to keep in memory, default 500; 0 turns the cache off) and
`synchronous_commit` (PostgreSQL only): endpoints.yml only names this class instead of `SQL`.
"""
import contextlib
import itertools
import json
from contextvars import ContextVar
from typing import Any, Dict, Iterator, List, Optional, Sequence, Text, Tuple

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.tracker_cache import Stamp, TrackerCache

# The failures of the message being handled: a list shared with the tasks Rasa starts for it.
_FAILURES: ContextVar[Optional[List[str]]] = ContextVar("tracker_store_failures", default=None)


@contextlib.contextmanager
def watch_failures() -> Iterator[List[str]]:
    """Collects the tracker store's failures while one message is handled."""
    failures: List[str] = []
    token = _FAILURES.set(failures)
    try:
        yield failures
    finally:
        _FAILURES.reset(token)


PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def _set_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


SYNCHRONOUS_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")


def _synchronous_commit(value: Text) -> Any:
    """A connect listener setting PostgreSQL's synchronous_commit on each new connection."""
    if value not in SYNCHRONOUS_COMMIT:
        raise ValueError(f"synchronous_commit must be one of {SYNCHRONOUS_COMMIT}, not {value!r}")

    def listener(dbapi_connection: Any, _connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET synchronous_commit TO {value}")
        finally:
            cursor.close()
        dbapi_connection.commit()

    return listener


# Rows per INSERT: far below SQLite's and PostgreSQL's limits on bound parameters (6 per row).
INSERT_BATCH = 500


@contextlib.contextmanager
def _noting_failures() -> Iterator[None]:
    """Notes a failed database call for the message being handled (see `watch_failures`)."""
    try:
        yield
    except Exception as error:
        failures = _FAILURES.get()
        if failures is not None:
            failures.append(type(error).__name__)
        raise


ROW_COLUMNS = ("sender_id", "type_name", "timestamp", "action_name", "intent_name", "data")


def _row(sender_id: Text, event: Event) -> Tuple[Any, ...]:
    """An `events` row (values of ROW_COLUMNS), as SQLTrackerStore.save makes it."""
    data = event.as_dict()
    return (sender_id, event.type_name, data.get("timestamp"), data.get("name"),
            data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY), json.dumps(data))


def _insert_statement(events: sa.Table, dialect: Any, rows: int, returning: bool) -> Any:
    """An INSERT of `rows` rows with named parameters (`<column>_<row>`), as SQL text.
    SQLAlchemy 1.4 compiles a multi-row INSERT construct anew at every execution (it is not
    cacheable), which was a third of a save; text is compiled once."""
    quote = dialect.identifier_preparer.quote
    values = ", ".join("(" + ", ".join(f":{column}_{n}" for column in ROW_COLUMNS) + ")"
                       for n in range(rows))
    sql = (f"INSERT INTO {quote(events.name)} ({', '.join(quote(c) for c in ROW_COLUMNS)}) "
           f"VALUES {values}" + (f" RETURNING {quote(events.c.id.name)}" if returning else ""))
    return sa.text(sql)


def _parameters(rows: Sequence[Tuple[Any, ...]]) -> Dict[Text, Any]:
    return {f"{column}_{n}": value
            for n, row in enumerate(rows) for column, value in zip(ROW_COLUMNS, row)}


def _stamp_statement(events: sa.Table) -> Any:
    sender = sa.bindparam("sender_id")
    session_start = (sa.select(sa.func.max(events.c.timestamp))
                     .where(events.c.sender_id == sender,
                            events.c.type_name == SessionStarted.type_name)
                     .scalar_subquery())
    return (sa.select(sa.func.count(events.c.id), sa.func.max(events.c.id))
            .where(events.c.sender_id == sender,
                   sa.or_(session_start.is_(None), events.c.timestamp >= session_start)))


class ClinicSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore that reports failures and caches trackers; on SQLite: one kept-open
    connection, WAL, synchronous=NORMAL."""

    def __init__(self, domain: Optional[Domain] = None, dialect: Text = "sqlite",
                 event_broker: Optional[EventBroker] = None, cache_conversations: int = 500,
                 synchronous_commit: Optional[Text] = None, **kwargs: Any) -> None:
        # Rasa builds a custom tracker store as cls(host=<url or None>, domain=...,
        # event_broker=..., **the other keys of its endpoints.yml section); the agent sets the
        # domain again once the model is loaded.
        super().__init__(domain=domain, dialect=dialect, event_broker=event_broker, **kwargs)
        self._cache = TrackerCache(int(cache_conversations))
        self._stamp_statement = _stamp_statement(self.SQLEvent.__table__)
        self._inserts: Dict[Tuple[int, bool], Any] = {}   # by (rows, returning)
        if self.engine.dialect.name == "postgresql" and synchronous_commit is not None:
            sa.event.listen(self.engine, "connect", _synchronous_commit(synchronous_commit))
            self.engine.dispose()  # the parent's pooled connection predates the listener
            return
        if self.engine.dialect.name != "sqlite":
            return
        # The parent made the table with a NullPool engine (its connection is closed by now);
        # from here on, one pooled connection with the pragmas.
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(
            url, poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=-1,
            # the kept connection may be used from another thread than the one that opened it
            # (never by two at once: the pool hands it to one user at a time)
            connect_args={"check_same_thread": False})
        sa.event.listen(self.engine, "connect", _set_pragmas)
        self.sessionmaker = sessionmaker(bind=self.engine)

    @contextlib.contextmanager
    def session_scope(self) -> Iterator[Any]:
        with _noting_failures(), super().session_scope() as session:
            yield session

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        # One autocommit read: no transaction to begin and roll back around it (on PostgreSQL
        # those are two more round trips, while the Rasa process waits).
        with _noting_failures(), self.engine.connect() as connection:
            stamp = self._stamp(connection.execution_options(isolation_level="AUTOCOMMIT"),
                                sender_id)
        cached = self._cache.take(sender_id, stamp)
        if cached is not None:
            return cached
        return await super().retrieve(sender_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Rasa's SQLTrackerStore.save (the events not stored yet, same columns), written with
        multi-row INSERTs instead of one ORM object per event. On PostgreSQL they return the new
        ids, so what the database then holds is known without reading it again."""
        sender_id = tracker.sender_id
        self._cache.forget(sender_id)
        await self.stream_events(tracker)
        events = self.SQLEvent.__table__
        returning = self.engine.dialect.name == "postgresql"  # not in SQLAlchemy 1.4's SQLite
        with self.session_scope() as session:
            stored, highest = self._stamp(session, sender_id)
            rows = [_row(sender_id, event) for event in itertools.islice(tracker.events, stored, None)]
            for start in range(0, len(rows), INSERT_BATCH):
                batch = rows[start:start + INSERT_BATCH]
                key = (len(batch), returning)
                if key not in self._inserts:
                    self._inserts[key] = _insert_statement(events, self.engine.dialect, len(batch),
                                                            returning)
                result = session.execute(self._inserts[key], _parameters(batch))
                if returning:
                    highest = max(result.scalars())
            session.commit()
            # If the saved events started a new session, the database's latest session holds
            # fewer events than this: the stamps then differ and the next retrieve reads it.
            stamp = (stored + len(rows), highest) if returning else self._stamp(session, sender_id)
        self._cache.put(tracker, stamp)

    def _stamp(self, session: Any, sender_id: Text) -> Stamp:
        """What the database holds of the conversation's latest session: (events, highest id).

        The same rows as Rasa's `_event_query` (events from the latest SessionStarted on),
        as one prepared Core statement: the ORM query costs about a millisecond more."""
        count, highest = session.execute(self._stamp_statement, {"sender_id": sender_id}).one()
        return count, highest
