"""Where the time of one message goes in our assistant (a look, not a test).

    .venv/bin/python -m bench.profile            # in-process: graph nodes, tracker stores
    .venv/bin/python -m bench.profile --py-spy   # also samples the running Rasa server under
                                                 # 10 concurrent users (needs py-spy in .venv)
    .venv/bin/python -m bench.profile --only-py-spy --profile production   # its Rasa processes
    .venv/bin/python -m bench.profile --cpu-split 5 --profile production   # CPU per process

In-process part: loads models/clinic.tar.gz in an Agent, times every graph node (NLU components,
policies) with a wrapper around GraphNode.__call__, and the whole handling of a message with
the in-memory tracker store vs the default profile's SQLite tracker store (and Rasa's own).
Messages: the held-out questions (not the urgent ones: they call the action server, which is not
running here).

py-spy part: starts the default-profile Stack (or the production one, with the benchmark's
database and services), samples its Rasa process(es) during a c10 load and prints the functions
that take the most time (own time, and time including callees, for a few libraries of
interest), per process. The raw samples go to bench/logs/py-spy-<profile>-<process>.txt.

--cpu-split part: starts the stack the same way and, for each c10 round, prints the CPU time per
message of every process on the machine, grouped (Rasa, PostgreSQL, nginx, Redis, the action
server, the load generator), against what the machine had (cores x wall time): what is left of
the machine when the stack tops out.
"""
import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import secrets as pysecrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(RASA_TELEMETRY_ENABLED="false", TQDM_DISABLE="1", TF_CPP_MIN_LOG_LEVEL="2",
                  SQLALCHEMY_SILENCE_UBER_WARNING="1", PYTHONPATH=str(ROOT))

import yaml  # noqa: E402

from stack import launch  # noqa: E402

URGENT = {"report_emergency", "report_urgent", "request_human"}


def heldout(skip=URGENT) -> List[str]:
    data = yaml.safe_load((ROOT / "tests" / "nlu" / "heldout.yml").read_text())
    return [line.strip()[2:] for block in data["nlu"] if block["intent"] not in skip
            for line in block["examples"].splitlines() if line.strip().startswith("- ")]


def ms(values: List[float]) -> str:
    values = sorted(values)
    p95 = values[int(0.95 * (len(values) - 1))]
    return f"mean {statistics.mean(values) * 1000:7.2f} ms, p50 {statistics.median(values) * 1000:7.2f}, p95 {p95 * 1000:7.2f}"


def time_graph_nodes():
    """Wraps GraphNode.__call__ so that every node run is timed by node name."""
    from rasa.engine.graph import GraphNode

    timings: Dict[str, List[float]] = collections.defaultdict(list)
    original = GraphNode.__call__

    def timed(self, *inputs):
        started = time.perf_counter()
        try:
            return original(self, *inputs)
        finally:
            timings[self._node_name].append(time.perf_counter() - started)

    GraphNode.__call__ = timed
    return timings


async def in_process(messages: List[str]) -> None:
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.core.lock_store import InMemoryLockStore
    from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore
    from rasa.shared.core.domain import Domain

    from rasa.utils.log_utils import configure_structlog

    # the server's level (INFO), without the warnings of loading
    logging.getLogger().setLevel(logging.ERROR)
    configure_structlog(logging.INFO)
    # action_escalate (for messages the urgency check flags) has no action server here: its
    # failure is expected and not part of the figures
    logging.getLogger("rasa.core.processor").setLevel(logging.CRITICAL)
    timings = time_graph_nodes()
    started = time.perf_counter()
    agent = Agent.load(str(launch.MODEL))
    print(f"model load: {time.perf_counter() - started:.1f} s; "
          f"model file {launch.MODEL.stat().st_size / 1e6:.1f} MB")

    for text in messages[:5]:  # warm-up
        await agent.parse_message(text)
    timings.clear()
    parse = []
    for text in messages:
        t0 = time.perf_counter()
        await agent.parse_message(text)
        parse.append(time.perf_counter() - t0)
    print(f"\nNLU only (Agent.parse_message, {len(messages)} messages): {ms(parse)}")
    for node, values in sorted(timings.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {node:<60} {statistics.mean(values) * 1000:7.3f} ms/run")

    domain: Domain = agent.domain
    with tempfile.TemporaryDirectory() as tmp:
        # The default profile's store (clinic/tracker_store.py), Rasa's own SQL store on SQLite
        # for comparison, then an experiment (bench/event_cache.py): Rasa's event class lookup
        # cached (last: it patches Rasa for the rest of this process).
        from bench.event_cache import CachedEventsTrackerStore
        from clinic.tracker_store import ClinicSQLTrackerStore

        stores = {
            "in-memory tracker store": lambda: InMemoryTrackerStore(domain),
            "Rasa's SQLTrackerStore on SQLite (a new connection each time, rollback journal)":
                lambda: SQLTrackerStore(domain, dialect="sqlite", db=str(Path(tmp) / "t.db")),
            "the default profile's (SQLite kept open, WAL, synchronous=NORMAL, tracker cache)":
                lambda: ClinicSQLTrackerStore(domain, db=str(Path(tmp) / "wal.db")),
            "as above + Event.resolve_by_type cached (experiment)":
                lambda: CachedEventsTrackerStore(domain, db=str(Path(tmp) / "tuned.db")),
        }
        for name, make_store in stores.items():
            store = make_store()
            agent.tracker_store = store
            agent.processor.tracker_store = store
            agent.lock_store = InMemoryLockStore()
            agent.processor.lock_store = agent.lock_store
            timings.clear()
            handle, retrieve, save = [], [], []
            orig_retrieve, orig_save = store.retrieve, store.save

            async def timed_retrieve(sender_id, _orig=orig_retrieve):
                t0 = time.perf_counter()
                try:
                    return await _orig(sender_id)
                finally:
                    retrieve.append(time.perf_counter() - t0)

            async def timed_save(tracker, _orig=orig_save):
                t0 = time.perf_counter()
                try:
                    return await _orig(tracker)
                finally:
                    save.append(time.perf_counter() - t0)

            store.retrieve, store.save = timed_retrieve, timed_save
            # 20 messages per conversation, as in the benchmark's loads
            for i, text in enumerate(messages):
                t0 = time.perf_counter()
                await agent.handle_message(UserMessage(text, CollectingOutputChannel(),
                                                       f"profile-{i // 20}"))
                handle.append(time.perf_counter() - t0)
            print(f"\nwhole message, {name} ({len(messages)} messages, 20 per conversation):\n"
                  f"  handle_message  {ms(handle)}\n"
                  f"  retrieve        {ms(retrieve)}  ({len(retrieve) / len(messages):.1f}/message)\n"
                  f"  save            {ms(save)}  ({len(save) / len(messages):.1f}/message)")
            for node, values in sorted(timings.items(), key=lambda kv: -sum(kv[1]))[:8]:
                print(f"  node {node:<55} {sum(values) / len(messages) * 1000:7.3f} ms/message")


@contextlib.contextmanager
def running_stack(profile: str) -> Iterator[Tuple[launch.Stack, str, List[str]]]:
    """The given profile's stack on free ports, warmed up: (stack, chat URL, messages)."""
    from bench import run as bench

    extra = {}
    if profile == "production":
        extra, why_not = bench.production_args()
        if extra is None:
            raise SystemExit(f"production profile not available: {why_not}")
    logs = bench.LOGS / "profile"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stack = launch.Stack(rasa_port=launch.free_port(), action_port=launch.free_port(),
                             web_port=launch.free_port(), log_dir=logs, data_dir=Path(tmp),
                             secrets={"RASA_AUTH_TOKEN": pysecrets.token_urlsafe(24),
                                      "STAFF_PASSWORD": pysecrets.token_urlsafe(16)}, **extra)
        try:
            stack.start()
            url = f"{stack.rasa_url}/webhooks/rest/webhook"
            pool = bench.ours_messages()
            asyncio.run(bench.warm_up(url, pool, "profile"))
            yield stack, url, pool
        finally:
            stack.stop()


def py_spy(seconds: int, profile: str) -> None:
    """Samples the Rasa process(es) of the given profile under 10 concurrent users."""
    from bench import run as bench

    spy = launch.BIN / "py-spy"
    if not spy.exists():
        raise SystemExit(f"{spy} is missing: `.venv/bin/pip install py-spy` (a look only; it is "
                         "not in requirements.txt)")
    raws: Dict[str, Path] = {}  # filled once the processes are up
    with running_stack(profile) as (stack, url, pool):
        raws = {name: bench.LOGS / f"py-spy-{profile}-{name}.txt"
                for name in stack.processes if name.startswith("rasa")}
        recorders = [subprocess.Popen(
            [str(spy), "record", "--pid", str(stack.processes[name].pid), "--duration",
             str(seconds), "--rate", "200", "--format", "raw", "--output", str(raw),
             "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for name, raw in raws.items()]
        time.sleep(1)
        scripts = [bench.ours_script(u, 40, pool) for u in range(10)]
        deadline = time.monotonic() + seconds
        load = {}
        while time.monotonic() < deadline - 2:
            load = asyncio.run(bench.run_load(url, scripts, 10, f"profile-{time.time_ns()}"))
        for recorder in recorders:
            _, err = recorder.communicate(timeout=seconds + 60)
            if recorder.returncode != 0:
                raise SystemExit(f"py-spy failed: {err.decode(errors='replace')[-800:]}")
        print(f"\nlast c10 load while sampling: {json.dumps(load)}")
    for name, raw in raws.items():
        print(f"\n== {profile}: {name}")
        summarise(raw)


# Processes grouped by their command line, first match wins (this process is the load).
CPU_GROUPS = (("postgres", "postgres"), ("nginx", "nginx"), ("redis", "redis-server"),
              ("action server", "rasa run actions"), ("Rasa server(s)", "rasa run"),
              ("load generator (this process)", "bench.profile"))


def cpu_by_group() -> Dict[str, float]:
    """CPU seconds used so far by every process on the machine, summed per CPU_GROUPS entry."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: Dict[str, float] = collections.Counter()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        group = next((name for name, needle in CPU_GROUPS if needle in command), "other")
        used[group] += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return used


def cpu_split(rounds: int, profile: str) -> None:
    """Where the machine's CPU goes per message under 10 users, process by process."""
    from bench import run as bench

    with running_stack(profile) as (_, url, pool):
        for round_ in range(rounds):
            before, started = cpu_by_group(), time.perf_counter()
            scripts = [bench.ours_script(u, 20, pool) for u in range(10)]
            load = asyncio.run(bench.run_load(url, scripts, 10, f"cpu-{time.time_ns()}"))
            wall, after = time.perf_counter() - started, cpu_by_group()
            per_message = {name: (after[name] - before.get(name, 0.0)) * 1000 / load["ok"]
                           for name in after}
            parts = ", ".join(f"{name} {value:.2f}" for name, value in
                              sorted(per_message.items(), key=lambda kv: -kv[1]) if value >= 0.05)
            print(f"round {round_ + 1}: {load['msgs_per_s']} msg/s; CPU ms per message: {parts}; "
                  f"all {sum(per_message.values()):.2f} of the machine's "
                  f"{os.cpu_count() * wall * 1000 / load['ok']:.2f} (cores x wall time)")


def summarise(raw: Path, top: int = 25) -> None:
    """Own time per function and time per library (inclusive), from py-spy's collapsed stacks."""
    own: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    groups = {
        "sqlalchemy (tracker store)": "sqlalchemy/",
        "sqlite3": "sqlite3/",
        "spacy": "spacy/",
        "sklearn": "sklearn/",
        "scipy.sparse": "scipy/sparse",
        "logging": "logging/__init__",
        "json": "json/",
        "rasa tracker_store": "rasa/core/tracker_store.py",
        "rasa NLU graph (parse_message)": "_parse_message_with_graph",
        "rasa policies (predict_next_action)": "_predict_next_with_tracker",
        "rasa featurizers": "rasa/nlu/featurizers",
        "rasa action server call": "rasa/core/actions/action.py",
        "clinic_nlu": "clinic_nlu/",
        "sanic/http": "sanic/",
        "asyncio select (idle)": "select (selectors.py",
        "copy.deepcopy": "copy.py",
        "DialogueStateTracker replay (events -> state)": "rasa/shared/core/trackers.py",
    }
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for name, needle in groups.items():
            if any(needle in f for f in frames):
                inclusive[name] += n
    print(f"\npy-spy: {total} samples of the Rasa server's threads (all threads)")
    print("  time including callees, by part:")
    for name, n in inclusive.most_common():
        print(f"    {100 * n / total:5.1f}%  {name}")
    print(f"  own time, top {top} functions:")
    for frame, n in own.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {frame[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--py-spy", action="store_true", help="also sample the running server")
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--only-py-spy", action="store_true")
    parser.add_argument("--cpu-split", type=int, metavar="ROUNDS", default=0,
                        help="instead: CPU per message of each process on the machine, per c10 round")
    parser.add_argument("--profile", choices=("default", "production"), default="default",
                        help="which stack py-spy or --cpu-split runs")
    args = parser.parse_args()
    if not launch.MODEL.exists():
        raise SystemExit(f"{launch.MODEL} is missing: run `make train` first")
    if args.cpu_split:
        cpu_split(args.cpu_split, args.profile)
        return
    if not args.only_py_spy:
        messages = heldout()
        asyncio.run(in_process(messages))
    if args.py_spy or args.only_py_spy:
        py_spy(args.seconds, args.profile)


if __name__ == "__main__":
    main()
