"""What the production-profile tests need: PostgreSQL, Redis and nginx on this machine.

CI starts PostgreSQL and Redis before the session; when they are down (a developer's machine
after a reboot) they are started here with the machine's usual commands. nginx comes from
`make install-production` (a prerequisite of `make test-e2e`).
"""
import subprocess
import time
from pathlib import Path

import pytest

from stack import production

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = {"host": "127.0.0.1", "port": 6379}
TEST_DB = "clinic_test"
START_POSTGRES = 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start'
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def _postgres_up(dbname: str = "postgres") -> bool:
    import psycopg2

    try:
        psycopg2.connect(dbname=dbname, connect_timeout=3, **PG).close()
        return True
    except psycopg2.Error:
        return False


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis(socket_connect_timeout=3, **REDIS).ping())
    except redis.RedisError:
        return False


def _ensure(name: str, is_up, start_command: str, timeout: float = 30) -> None:
    if is_up():
        return
    subprocess.run(start_command, shell=True, check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_up():
            return
        time.sleep(0.5)
    pytest.fail(f"{name} is not running on this machine and `{start_command}` did not start it")


def ensure_services() -> None:
    """PostgreSQL (with the database clinic_test) and Redis, started if they are down."""
    _ensure("PostgreSQL", _postgres_up, START_POSTGRES)
    _ensure("Redis", _redis_up, START_REDIS)
    production.create_database(TEST_DB, connect_timeout=3, **PG)


@pytest.fixture(scope="session")
def redis_service():
    """Redis on 127.0.0.1:6379, started if it is down."""
    _ensure("Redis", _redis_up, START_REDIS)
    return dict(REDIS)


@pytest.fixture(scope="session")
def max_message_chars():
    """The REST channel's limit on a message's length (credentials.yml)."""
    import yaml

    from stack.launch import ROOT

    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    return int(credentials["clinic.rest_channel.ClinicRestInput"]["max_message_chars"])


@pytest.fixture(scope="session")
def production_settings():
    """The production profile's settings for the local test services."""
    ensure_services()
    try:
        production.nginx_binary()
    except SystemExit as missing:
        pytest.fail(str(missing))
    return {
        **{name: default for name, default in production.SETTINGS.items() if default is not None},
        "TRACKER_DB_HOST": PG["host"], "TRACKER_DB_PORT": str(PG["port"]),
        "TRACKER_DB_NAME": TEST_DB, "TRACKER_DB_USER": PG["user"], "TRACKER_DB_PASSWORD": "",
        "LOCK_STORE_HOST": REDIS["host"], "LOCK_STORE_PORT": str(REDIS["port"]),
        "LOCK_STORE_DB": "0", "LOCK_STORE_KEY_PREFIX": "clinictest", "RASA_WORKERS": "2",
    }


def pytest_collection_modifyitems(config, items):
    """Runs the production-profile tests first: their stack stops before the shared default
    one starts, so the two never run at the same time (the machine has 2 cores)."""
    items.sort(key=lambda item: Path(str(item.fspath)).name != "test_production.py")


@pytest.fixture
def purge_check():
    """check(stack, db_url, send, profile): old rows go, recent ones stay (scripts/purge.py).

    `send(sender, text)` chats through the stack. A recent conversation is made through the
    stack; rows 40 days old, of another conversation and of the recent one, are inserted into
    the tracker store's `events` table directly; `purge.py --days 30` must delete exactly them.
    """
    import json
    import uuid

    import requests
    import sqlalchemy as sa

    from stack.launch import BIN, ROOT

    def user_texts(stack, sender):
        tracker = requests.get(f"{stack.rasa_api_url}/conversations/{sender}/tracker",
                               params={"token": stack.secrets["RASA_AUTH_TOKEN"]}, timeout=30)
        tracker.raise_for_status()
        return [e.get("text") for e in tracker.json()["events"] if e["event"] == "user"]

    def purge(stack, profile, *extra):
        result = subprocess.run(
            [str(BIN / "python"), str(ROOT / "scripts" / "purge.py"), "--days", "30",
             "--profile", profile, *extra],
            env=stack.env(), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    def check(stack, db_url, send, profile):
        recent, old = f"purge-recent-{uuid.uuid4().hex[:8]}", f"purge-old-{uuid.uuid4().hex[:8]}"
        send(recent, "what is the trial")
        engine = sa.create_engine(db_url)
        events = sa.Table("events", sa.MetaData(), autoload_with=engine)
        then = time.time() - 40 * 24 * 3600

        def rows(sender):
            with engine.connect() as connection:
                return connection.execute(sa.select(events.c.timestamp).where(
                    events.c.sender_id == sender)).scalars().all()

        recent_before = rows(recent)
        with engine.begin() as connection:
            connection.execute(events.insert(), [
                {"sender_id": sender, "type_name": kind, "timestamp": then + i,
                 "data": json.dumps({"event": kind, "timestamp": then + i, "text": "old"})}
                for sender in (old, recent) for i, kind in enumerate(("user", "bot"))])
        assert len(rows(old)) == 2 and len(rows(recent)) == len(recent_before) + 2

        assert "Would delete" in purge(stack, profile, "--dry-run")
        assert len(rows(old)) == 2, "a dry run deleted something"

        assert "Deleted" in purge(stack, profile)
        assert rows(old) == []
        assert sorted(rows(recent)) == sorted(recent_before)
        assert user_texts(stack, recent) == ["what is the trial"]
        assert user_texts(stack, old) == []
        engine.dispose()

    return check
