"""Deletes conversations older than N days from the tracker store: `make purge DAYS=N`.

Rasa's SQL tracker store keeps every event of every conversation (what the visitor wrote,
what the assistant answered, slots) as one row of the `events` table, with its time
(`timestamp`, seconds since 1970). This deletes every row older than N days, so nothing older
than that is kept; a conversation still going on across the limit keeps only its recent part.

Which database:
- TRACKER_DB_URL (an SQLAlchemy URL) if set;
- else the profile's: default -> the SQLite file TRACKER_SQLITE_DB (var/conversations.db);
  production -> PostgreSQL from the production settings (environment, then
  profiles/production.env; stack/production.py).

Prints how many rows and conversations it deleted; never what they said. Run it daily (cron,
a Kubernetes CronJob) to enforce the retention period (README "Privacy and retention").
"""
import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

SECONDS_PER_DAY = 24 * 60 * 60


def database_url(profile: str):
    if os.environ.get("TRACKER_DB_URL"):
        return os.environ["TRACKER_DB_URL"]
    if profile == "production":
        from stack import production

        return production.tracker_db_url(production.load_settings(names=production.TRACKER_SETTINGS))
    db = os.environ.get("TRACKER_SQLITE_DB") or str(ROOT / "var" / "conversations.db")
    return f"sqlite:///{db}"


def purge(url, days: float, dry_run: bool = False, now: float = None):
    """Deletes (or with dry_run counts) the events older than `days`; returns (rows, conversations)."""
    cutoff = (now if now is not None else time.time()) - days * SECONDS_PER_DAY
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return 0, 0  # no conversations yet (and do not create an empty database)
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("events"):
            return 0, 0
        events = sa.Table("events", sa.MetaData(), autoload_with=engine)
        old = events.c.timestamp < cutoff
        with engine.begin() as connection:
            rows, conversations = connection.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(events.c.sender_id))).where(old)
            ).one()
            if not dry_run:
                connection.execute(events.delete().where(old))
        return rows, conversations
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, required=True,
                        help="delete what is older than this many days")
    parser.add_argument("--profile", choices=("default", "production"), default="default")
    parser.add_argument("--dry-run", action="store_true", help="only count what would go")
    args = parser.parse_args()
    if args.days < 0:
        parser.error("--days must be 0 or more")
    url = database_url(args.profile)
    rows, conversations = purge(url, args.days, dry_run=args.dry_run)
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    verb = "Would delete" if args.dry_run else "Deleted"
    print(f"{verb} {rows} events of {conversations} conversations older than {args.days:g} days "
          f"from {shown}.")


if __name__ == "__main__":
    main()
