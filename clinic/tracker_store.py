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

Both: the connections autocommit. A read, or a save that is one INSERT (every message's), is
then one statement without BEGIN and COMMIT around it: on PostgreSQL two round trips fewer per
save and one fewer switch of isolation level per read: a message's retrieve and save went from
about 1.7-1.9 to 1.2-1.4 ms (0.4 ms less CPU), measured in-process against the local PostgreSQL.
A save of more rows than one INSERT takes still runs in one explicit transaction.

PostgreSQL (the production profile): Rasa's engine settings (pool, schema), plus the optional
`synchronous_commit` setting for this store's connections. The production profile sets it to
"off": a commit then returns before PostgreSQL has flushed its WAL, which cut the time the Rasa
processes waited for commits by about two thirds; a crash of PostgreSQL or of its machine can
lose the last fraction of a second of messages (at most 3 x wal_writer_delay, 600 ms by
default), never corrupt them. For a record that must never lose a write, remove the setting
(PostgreSQL's default, "on").

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
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
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
    # autocommit=False: no COMMIT from SQLAlchemy 1.4 after it (the connection autocommits; in
    # an explicit transaction that COMMIT would end it early)
    return sa.text(sql).execution_options(autocommit=False)


@contextlib.contextmanager
def _one_transaction(connection: Any, needed: bool) -> Iterator[None]:
    """Makes the statements run inside one transaction, when `needed`, on an autocommit
    connection (SQLAlchemy's begin() would not send BEGIN there)."""
    if not needed:
        yield
        return
    connection.exec_driver_sql("BEGIN")
    try:
        yield
    except BaseException:
        connection.exec_driver_sql("ROLLBACK")
        raise
    connection.exec_driver_sql("COMMIT")


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
        # The parent made the table; from here on, the same database through autocommit
        # connections (module docstring).
        url = self.engine.url
        self.engine.dispose()
        if self.engine.dialect.name == "sqlite":
            # Rasa's engine had a NullPool: one pooled connection with the pragmas instead.
            self.engine = sa.create_engine(
                url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.QueuePool, pool_size=1,
                max_overflow=-1,
                # the kept connection may be used from another thread than the one that opened
                # it (never by two at once: the pool hands it to one user at a time)
                connect_args={"check_same_thread": False})
            sa.event.listen(self.engine, "connect", _set_pragmas)
        else:
            self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT",
                                           **create_engine_kwargs(url))
            if self.engine.dialect.name == "postgresql" and synchronous_commit is not None:
                sa.event.listen(self.engine, "connect", _synchronous_commit(synchronous_commit))
        self.sessionmaker = sessionmaker(bind=self.engine)

    @contextlib.contextmanager
    def session_scope(self) -> Iterator[Any]:
        with _noting_failures(), super().session_scope() as session:
            yield session

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        with _noting_failures(), self.engine.connect() as connection:
            stamp = self._stamp(connection, sender_id)
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
        with _noting_failures(), self.engine.connect() as connection:
            stored, highest = self._stamp(connection, sender_id)
            rows = [_row(sender_id, event) for event in itertools.islice(tracker.events, stored, None)]
            batches = [rows[start:start + INSERT_BATCH] for start in range(0, len(rows), INSERT_BATCH)]
            with _one_transaction(connection, len(batches) > 1):
                for batch in batches:
                    key = (len(batch), returning)
                    if key not in self._inserts:
                        self._inserts[key] = _insert_statement(events, self.engine.dialect,
                                                                len(batch), returning)
                    result = connection.execute(self._inserts[key], _parameters(batch))
                    if returning:
                        highest = max(result.scalars())
            # If the saved events started a new session, the database's latest session holds
            # fewer events than this: the stamps then differ and the next retrieve reads it.
            stamp = (stored + len(rows), highest) if returning else self._stamp(connection, sender_id)
        self._cache.put(tracker, stamp)

    def _stamp(self, session: Any, sender_id: Text) -> Stamp:
        """What the database holds of the conversation's latest session: (events, highest id).

        The same rows as Rasa's `_event_query` (events from the latest SessionStarted on),
        as one prepared Core statement: the ORM query costs about a millisecond more."""
        count, highest = session.execute(self._stamp_statement, {"sender_id": sender_id}).one()
        return count, highest
