"""Benchmark experiments only (bench/endpoints-*.yml): what two changes would buy. Not shipped.

- `WalSQLiteTrackerStore`: Rasa's SQL tracker store on SQLite, with one kept-open connection
  (SQLAlchemy 1.4 gives file SQLite a NullPool: every retrieve and save opens the file again,
  and with WAL the last close checkpoints and fsyncs) and PRAGMA journal_mode=WAL,
  synchronous=NORMAL (a commit appends to the log; fsync at checkpoints only). Trade-off: a
  power loss (not a crash of the process) can lose the last commits.
- `TunedSQLiteTrackerStore`: the same, and Event.resolve_by_type cached. Rasa 3.6 walks all
  Event subclasses (inspect.isabstract on each) for every event it deserialises; py-spy put
  that at about 11% of the server's time (bench/README.md, "Profiling").
"""
import functools
from typing import Any, Optional, Text

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain


def _pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class WalSQLiteTrackerStore(SQLTrackerStore):
    def __init__(self, domain: Optional[Domain] = None, db: Text = "rasa.db",
                 event_broker: Optional[EventBroker] = None, **kwargs: Any) -> None:
        kwargs.pop("host", None)
        kwargs.pop("dialect", None)
        super().__init__(domain=domain, dialect="sqlite", db=db, event_broker=event_broker,
                         **kwargs)
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=1,
                                       max_overflow=4, pool_pre_ping=False,
                                       connect_args={"check_same_thread": False})
        sa.event.listen(self.engine, "connect", _pragmas)
        self.sessionmaker = sessionmaker(bind=self.engine)


def cache_event_resolution() -> None:
    from rasa.shared.core import events

    original = events.Event.resolve_by_type
    if getattr(original, "cache_info", None):
        return

    @functools.lru_cache(maxsize=None)
    def resolve_by_type(type_name, default=None):
        return original(type_name, default)

    events.Event.resolve_by_type = staticmethod(resolve_by_type)


class TunedSQLiteTrackerStore(WalSQLiteTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cache_event_resolution()
        super().__init__(*args, **kwargs)
