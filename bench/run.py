"""Side-by-side benchmark: our assistant vs the stock `rasa init` bot (same Rasa, same machine).

`make bench` runs this. It prints figures; it is not a test: it exits 0 whether or not the
targets are met (non-zero only when the benchmark itself could not run). bench/README.md says
what is measured and how.

Servers, each on free ports on 127.0.0.1:
- ours:       the default profile (stack.launch.Stack: action server + one Rasa process, SQLite);
- stock:      `rasa run --enable-api --auth-token <random>` on the `rasa init` model (bench/stock.py);
- production: Stack(profile="production") (PostgreSQL, Redis, 2+ Rasa processes behind nginx),
              when stack/launch.py supports it and its services are there.
By default all are started first (idle, they use no CPU) and each load runs on each server in
turn, so that the machine's other work weighs on all of them alike; --sequential runs one
server at a time instead.

Loads, the same for each server (aiohttp, asyncio; every user its own sender id and its messages
one after another): seq (5 users x 20 messages, strictly one message at a time), c10 (10 users
x 20) and c50 (50 users x 20). Then the resident memory of each server's processes.
"""
import argparse
import asyncio
import inspect
import json
import os
import platform
import random
import re
import secrets as pysecrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import stock as stock_bot  # noqa: E402
from stack import launch, production  # noqa: E402

RESULTS = ROOT / "bench" / "results.json"
LOGS = ROOT / "bench" / "logs"  # ignored by git (logs/ in .gitignore)
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"

# name -> (users, messages per user, max users in flight); "seq" is strictly sequential.
LOADS = {"seq": (5, 20, 1), "c10": (10, 20, 10), "c50": (50, 20, 50)}
REQUEST_TIMEOUT_S = 30.0      # per message (the clinic's REST channel also gives up at 30 s)
PHASE_TIMEOUT_S = 900.0       # per load: whatever is not done by then counts as errors
WARMUP_MESSAGES = 10          # per server, before measuring, not counted
SEED = 20240601

TARGETS = [
    # (ratio key, comparison, bound, description)
    ("throughput_10", ">=", 3.0, "default profile: throughput at 10 users >= 3x stock"),
    ("p95_10", "<=", 0.3, "default profile: p95 latency at 10 users <= 0.3x stock"),
    ("throughput_10_production", ">=", 5.0, "production profile: throughput at 10 users >= 5x stock"),
    ("rss", "<=", 0.8, "default profile: resident memory <= 0.8x stock"),
]

# The stock bot understands greetings, moods, yes/no, "are you a bot" and goodbyes; these
# conversations follow its stories and rules, so every message gets a reply. Five conversations
# of four messages: 20 messages per user, as for ours.
STOCK_CONVERSATIONS = [
    ["hello", "I am great", "are you a bot?", "bye"],
    ["hi there", "I am sad", "yes", "goodbye"],
    ["good morning", "very sad", "indeed", "bye bye"],
    ["hey", "amazing", "am I talking to a bot?", "see you later"],
    ["good evening", "my day was horrible", "of course", "have a nice day"],
]


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def bench_env() -> Dict[str, str]:
    env = launch.base_env()
    env.update(RASA_TELEMETRY_ENABLED="false", TQDM_DISABLE="1", PYTHONPATH=str(ROOT))
    return env


# ---------------------------------------------------------------------------------------------
# Messages


def ours_messages() -> List[str]:
    """The held-out questions (written as visitors write), in a fixed shuffled order."""
    data = yaml.safe_load(HELDOUT.read_text())
    texts = []
    for block in data["nlu"]:
        for line in block.get("examples", "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                # entity markup [text](entity), if any, becomes its text
                texts.append(re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line[2:]).strip())
    texts = [t for t in texts if t]
    random.Random(SEED).shuffle(texts)
    return texts


def ours_script(user: int, count: int, pool: List[str]) -> List[str]:
    start = (user * count) % len(pool)
    return [pool[(start + i) % len(pool)] for i in range(count)]


def stock_script(user: int, count: int) -> List[str]:
    flat = [m for conv in STOCK_CONVERSATIONS for m in conv]
    # each user starts at a different conversation, always at a conversation's start
    start = (user % len(STOCK_CONVERSATIONS)) * len(STOCK_CONVERSATIONS[0])
    return [flat[(start + i) % len(flat)] for i in range(count)]


# ---------------------------------------------------------------------------------------------
# Load generator


@dataclass
class Outcome:
    latency_s: Optional[float]
    error: Optional[str]  # None, "status-<n>", "timeout", "connection", "empty", "bad-json"


async def send(session: aiohttp.ClientSession, url: str, sender: str, text: str) -> Outcome:
    started = time.perf_counter()
    try:
        async with session.post(url, json={"sender": sender, "message": text},
                                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as resp:
            body = await resp.read()
            elapsed = time.perf_counter() - started
            if resp.status // 100 != 2:
                return Outcome(elapsed, f"status-{resp.status}")
            try:
                messages = json.loads(body)
            except ValueError:
                return Outcome(elapsed, "bad-json")
            if not isinstance(messages, list) or not any(
                    (m.get("text") or m.get("custom") or m.get("image")) for m in messages
                    if isinstance(m, dict)):
                return Outcome(elapsed, "empty")
            return Outcome(elapsed, None)
    except asyncio.TimeoutError:
        return Outcome(None, "timeout")
    except aiohttp.ClientError:
        return Outcome(None, "connection")


def percentile(sorted_values: List[float], q: float) -> Optional[float]:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


async def run_load(url: str, scripts: List[List[str]], in_flight: int, tag: str) -> Dict:
    """Each script is one user (own sender id) sending its messages one after another."""
    outcomes: List[Outcome] = []
    expected = sum(len(s) for s in scripts)
    gate = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=in_flight, force_close=False)

    async with aiohttp.ClientSession(connector=connector) as session:
        async def user(index: int, script: List[str]) -> None:
            sender = f"bench-{tag}-{index}"
            async with gate:  # seq: users one after another; cN: all N at once
                for text in script:
                    outcomes.append(await send(session, url, sender, text))

        started = time.perf_counter()
        tasks = [asyncio.ensure_future(user(i, s)) for i, s in enumerate(scripts)]
        done, pending = await asyncio.wait(tasks, timeout=PHASE_TIMEOUT_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - started
        for task in done:
            if task.exception() is not None:
                raise task.exception()

    ok = sorted(o.latency_s for o in outcomes if o.error is None)
    kinds: Dict[str, int] = {}
    for o in outcomes:
        if o.error:
            kinds[o.error] = kinds.get(o.error, 0) + 1
    if len(outcomes) < expected:
        kinds["unfinished"] = expected - len(outcomes)
    return {
        "messages": expected,
        "users": len(scripts),
        "ok": len(ok),
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
        "p50_ms": round(percentile(ok, 0.50) * 1000, 1) if ok else None,
        "p95_ms": round(percentile(ok, 0.95) * 1000, 1) if ok else None,
        "max_ms": round(ok[-1] * 1000, 1) if ok else None,
        "msgs_per_s": round(len(ok) / wall, 2) if wall > 0 else None,
        "wall_s": round(wall, 2),
    }


async def warm_up(url: str, texts: List[str], tag: str) -> None:
    async with aiohttp.ClientSession() as session:
        for i, text in enumerate(texts[:WARMUP_MESSAGES]):
            outcome = await send(session, url, f"bench-{tag}-warmup-{i % 3}", text)
            if outcome.error in ("connection", "timeout"):
                raise RuntimeError(f"warm-up message to {url} failed: {outcome.error}")


def run_one_load(server: "Server", load: str, spec: Tuple[int, int, int], round_: int) -> Dict:
    users, per_user, in_flight = spec
    scripts = [server.script(u, per_user) for u in range(users)]
    log(f"  {server.name}: {load} (round {round_ + 1}): {users} users x {per_user} messages, "
        f"{in_flight} at a time ...")
    # new sender ids each round: every round starts new conversations
    result = asyncio.run(run_load(server.url, scripts, in_flight,
                                  f"{server.tag}-{load}-r{round_}"))
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    log(f"    p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, {result['msgs_per_s']} msg/s, "
        f"errors {result['errors']} {result['error_kinds'] or ''}")
    return result


def median_round(rounds: List[Dict]) -> Dict:
    """The round with the median throughput (its own p50/p95 with it), all rounds listed, and
    the errors of all rounds: a round with errors is never hidden by the choice."""
    chosen = dict(sorted(rounds, key=lambda r: r["msgs_per_s"])[(len(rounds) - 1) // 2])
    chosen["errors"] = sum(r["errors"] for r in rounds)
    chosen["rounds"] = [{k: r[k] for k in ("msgs_per_s", "p50_ms", "p95_ms", "errors")}
                        for r in rounds]
    return chosen


# ---------------------------------------------------------------------------------------------
# Memory


def _children() -> Dict[int, List[int]]:
    tree: Dict[int, List[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_rss_mb(pid: int) -> Tuple[float, int]:
    """Sum of VmRSS over the process and all its descendants, and how many processes."""
    tree = _children()
    todo, total_kb, count = [pid], 0, 0
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    count += 1
                    break
        except OSError:
            continue
        todo.extend(tree.get(current, []))
    return round(total_kb / 1024, 1), count


def memory(processes: Dict[str, subprocess.Popen], skip=("web",)) -> Dict:
    detail, count = {}, 0
    for name, process in processes.items():
        if name in skip or process.poll() is not None:
            continue
        detail[name], n = tree_rss_mb(process.pid)
        count += n
    return {"rss_mb": round(sum(detail.values()), 1), "rss_detail_mb": detail,
            "rss_processes": count}


# ---------------------------------------------------------------------------------------------
# Servers


def stack_supports_production() -> bool:
    return "profile" in inspect.signature(launch.Stack).parameters


class Server:
    """One server under test: started, loaded, measured, stopped."""

    def __init__(self, name: str, tag: str) -> None:
        self.name, self.tag = name, f"{tag}-{name}"
        self.logs = LOGS / name
        self.url = ""
        self.entry: Dict = {}

    def script(self, user: int, count: int) -> List[str]:
        raise NotImplementedError

    def processes(self) -> Dict[str, subprocess.Popen]:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def up(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        # where each log file ends now: only what this run appends is checked afterwards
        self.log_offsets = {p: p.stat().st_size for p in self.logs.glob("*.log")}
        log(f"Starting {self.name} (logs in {self.logs.relative_to(ROOT)}) ...")
        started = time.monotonic()
        self.start()
        self.entry["startup_s"] = round(time.monotonic() - started, 1)
        self.entry["url"] = self.url
        asyncio.run(warm_up(self.url, [self.script(u, 1)[0] for u in range(WARMUP_MESSAGES)],
                            self.tag))

    def log_errors(self) -> Dict[str, int]:
        """ERROR lines this run wrote to the servers' logs, per log file (an action that failed
        still gives the visitor a reply, so the load generator cannot see it)."""
        counts = {}
        for path in sorted(self.logs.glob("*.log")):
            with open(path, "rb") as f:
                f.seek(self.log_offsets.get(path, 0))
                n = sum(1 for line in f if b" ERROR " in line)
            if n:
                counts[path.name] = n
        return counts

    def measure_memory(self) -> None:
        self.entry.update(memory(self.processes()))
        self.entry["processes"] = sorted(self.processes())

    def check_alive(self) -> None:
        dead = [n for n, p in self.processes().items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{self.name}: {', '.join(dead)} stopped during the benchmark; "
                               f"see {self.logs.relative_to(ROOT)}")


# Experiments (not run by default): ours with another endpoints file from bench/.
VARIANTS = {"ours-tuned": "endpoints-tuned.yml", "ours-memory": "endpoints-memory.yml"}


def stack_class(endpoints: Optional[Path]):
    if endpoints is None:
        return launch.Stack
    if not isinstance(getattr(launch.Stack, "endpoints", None), property):
        raise RuntimeError("stack.launch.Stack has no endpoints property to override")

    class VariantStack(launch.Stack):
        @property
        def endpoints(self) -> Path:
            return endpoints

    return VariantStack


class StackServer(Server):
    """Ours (default profile) or production: stack.launch.Stack on free ports."""

    def __init__(self, name: str, tag: str, run_dir: Path, token: str,
                 endpoints: Optional[Path] = None, **stack_args) -> None:
        super().__init__(name, tag)
        self.pool = ours_messages()
        self.stack = stack_class(endpoints)(
            rasa_port=launch.free_port(), action_port=launch.free_port(),
            web_port=launch.free_port(), log_dir=self.logs, data_dir=run_dir / name,
            secrets={"RASA_AUTH_TOKEN": token, "STAFF_PASSWORD": pysecrets.token_urlsafe(16)},
            **stack_args)
        self.url = f"{self.stack.rasa_url}/webhooks/rest/webhook"

    def script(self, user: int, count: int) -> List[str]:
        return ours_script(user, count, self.pool)

    def processes(self) -> Dict[str, subprocess.Popen]:
        return {n: p for n, p in self.stack.processes.items() if n != "web"}

    def start(self) -> None:
        self.stack.start()

    def stop(self) -> None:
        self.stack.stop()


class StockServer(Server):
    """The `rasa init` bot: `rasa run` with its own endpoints (in-memory) and credentials."""

    def __init__(self, name: str, tag: str, run_dir: Path, token: str) -> None:
        super().__init__(name, tag)
        self.run_dir, self.token = run_dir, token
        self.port = launch.free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhooks/rest/webhook"
        self.process: Optional[subprocess.Popen] = None

    def script(self, user: int, count: int) -> List[str]:
        return stock_script(user, count)

    def processes(self) -> Dict[str, subprocess.Popen]:
        return {"rasa": self.process} if self.process else {}

    def start(self) -> None:
        model = stock_bot.stock_model(bench_env(), log=log)
        project = model.parent  # the init project's endpoints.yml and credentials.yml
        self.entry["model"] = str(model.relative_to(ROOT))
        command = [str(launch.BIN / "rasa"), "run", "--model", str(model),
                   "--port", str(self.port), "--interface", "127.0.0.1",
                   "--enable-api", "--auth-token", self.token,
                   "--endpoints", str(project / "endpoints.yml"),
                   "--credentials", str(project / "credentials.yml")]
        with open(self.logs / f"rasa-{self.port}.log", "ab") as out:
            self.process = subprocess.Popen(command, cwd=self.run_dir, env=bench_env(),
                                            stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        launch.wait_until_up(f"http://127.0.0.1:{self.port}/", process=self.process)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


BENCH_DB = os.environ.get("BENCH_TRACKER_DB_NAME", "clinic_bench")
# The local services the e2e tests use (tests/e2e/conftest.py), when no production settings are
# configured: PostgreSQL as `postgres` on 127.0.0.1 (local trust), Redis on 127.0.0.1.
LOCAL_SERVICES = {"TRACKER_DB_HOST": "127.0.0.1", "TRACKER_DB_PORT": "5432",
                  "TRACKER_DB_USER": "postgres", "TRACKER_DB_PASSWORD": "",
                  "LOCK_STORE_HOST": "127.0.0.1", "LOCK_STORE_PORT": "6379"}


def _bench_database(settings: Dict[str, str]) -> None:
    """Creates the benchmark's own database if needed and removes earlier benchmark rows.

    The benchmark never writes into the configured conversations database: it uses
    BENCH_TRACKER_DB_NAME (default clinic_bench) on the same server, and its own lock prefix.
    """
    import psycopg2

    connect = dict(host=settings["TRACKER_DB_HOST"], port=int(settings["TRACKER_DB_PORT"]),
                   user=settings["TRACKER_DB_USER"],
                   password=settings.get("TRACKER_DB_PASSWORD") or None, connect_timeout=5)
    production.create_database(BENCH_DB, **connect)
    db = psycopg2.connect(dbname=BENCH_DB, **connect)
    try:
        with db, db.cursor() as cursor:
            cursor.execute("SELECT to_regclass('public.events')")
            if cursor.fetchone()[0]:
                cursor.execute("DELETE FROM events WHERE sender_id LIKE %s", ("bench-%",))
    finally:
        db.close()


def production_args() -> Tuple[Optional[Dict], Optional[str]]:
    """Stack arguments for the production profile, or why it cannot run."""
    if not stack_supports_production():
        return None, "stack.launch.Stack has no profile= option yet"
    try:
        from stack import production
        try:
            settings = production.load_settings()
            source = "the production settings (environment / profiles/production.env)"
        except SystemExit:
            settings = {**{k: v for k, v in production.SETTINGS.items() if v is not None},
                        **LOCAL_SERVICES}
            source = "the local PostgreSQL and Redis (as in tests/e2e/conftest.py)"
        settings = {**settings, "TRACKER_DB_NAME": BENCH_DB, "LOCK_STORE_KEY_PREFIX": "clinicbench"}
        production.nginx_binary()
        _bench_database(settings)
        production.check_services(settings)
    except SystemExit as reason:  # production.py reports missing settings/services this way
        return None, str(reason)
    except Exception as error:  # noqa: BLE001 - an unfinished profile is a gap, not a crash
        return None, f"{type(error).__name__}: {error}"
    workers = max(2, int(settings.get("RASA_WORKERS", "2")))
    log(f"production: {workers} Rasa processes; services from {source}; database {BENCH_DB}")
    return {"profile": "production", "settings": settings, "rasa_workers": workers}, None


# ---------------------------------------------------------------------------------------------
# Report


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b in (None, 0):
        return None
    return round(a / b, 3)


def ratios(results: Dict) -> Dict:
    ours, stock, prod = results.get("ours"), results.get("stock"), results.get("production")
    out: Dict[str, Optional[float]] = {}
    if ours and stock:
        for load, suffix in (("seq", "seq"), ("c10", "10"), ("c50", "50")):
            out[f"throughput_{suffix}"] = ratio(ours[load]["msgs_per_s"], stock[load]["msgs_per_s"])
            out[f"p50_{suffix}"] = ratio(ours[load]["p50_ms"], stock[load]["p50_ms"])
            out[f"p95_{suffix}"] = ratio(ours[load]["p95_ms"], stock[load]["p95_ms"])
        out["rss"] = ratio(ours["rss_mb"], stock["rss_mb"])
    if prod and stock and "c10" in prod:
        for load, suffix in (("c10", "10"), ("c50", "50")):
            out[f"throughput_{suffix}_production"] = ratio(prod[load]["msgs_per_s"],
                                                           stock[load]["msgs_per_s"])
            out[f"p95_{suffix}_production"] = ratio(prod[load]["p95_ms"], stock[load]["p95_ms"])
        out["rss_production"] = ratio(prod["rss_mb"], stock["rss_mb"])
    for name in VARIANTS:  # experiments
        variant = results.get(name)
        if variant and stock and "c10" in variant:
            out[f"throughput_10_{name}"] = ratio(variant["c10"]["msgs_per_s"],
                                                 stock["c10"]["msgs_per_s"])
            out[f"p95_10_{name}"] = ratio(variant["c10"]["p95_ms"], stock["c10"]["p95_ms"])
    return out


def fmt(value, width=9) -> str:
    return f"{'-' if value is None else value:>{width}}"


def table(results: Dict) -> str:
    lines = [f"{'server':<11} {'load':<5} {'msgs':>5} {'p50 ms':>9} {'p95 ms':>9} "
             f"{'msg/s':>9} {'errors':>7} {'rss MB':>9}"]
    for server in ("ours", *VARIANTS, "stock", "production"):
        if server in VARIANTS and server not in results:
            continue
        entry = results.get(server)
        if not entry or "seq" not in entry:
            lines.append(f"{server:<11} (not run: {entry.get('skipped') if entry else 'not in --servers'})")
            continue
        for load in LOADS:
            r = entry[load]
            lines.append(f"{server:<11} {load:<5} {r['messages']:>5} {fmt(r['p50_ms'])} "
                         f"{fmt(r['p95_ms'])} {fmt(r['msgs_per_s'])} {r['errors']:>7} "
                         f"{fmt(entry['rss_mb'] if load == 'c50' else None)}")
        detail = ", ".join(f"{k} {v}" for k, v in entry["rss_detail_mb"].items())
        lines.append(f"{'':<11} rss after the loads: {entry['rss_mb']} MB ({detail}; "
                     f"{entry['rss_processes']} processes)")
        if entry.get("log_errors"):
            lines.append(f"{'':<11} ERROR lines in its logs during the run: {entry['log_errors']}")
    return "\n".join(lines)


def check_targets(results: Dict) -> List[Dict]:
    checks = []
    run = [s for s in ("ours", "stock", "production") if "seq" in results.get(s, {})]
    errors = {s: sum(results[s][load]["errors"] for load in LOADS) for s in run}
    checks.append({"target": "zero errors (every server, every load)",
                   "value": errors, "met": bool(run) and not any(errors.values())})
    logged = {s: sum(results[s].get("log_errors", {}).values()) for s in run}
    checks.append({"target": "(also) no ERROR lines in the servers' logs: a failed custom action "
                             "still gets the visitor a reply, so the client cannot count it",
                   "value": logged, "met": bool(run) and not any(logged.values())})
    for key, op, bound, text in TARGETS:
        value = results["ratios"].get(key)
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        checks.append({"target": text, "key": key, "bound": f"{op} {bound}", "value": value,
                       "met": met})
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="ours,stock,production",
                        help="comma-separated subset of ours,stock,production; experiments: "
                             + ",".join(VARIANTS) + " (ours with bench/endpoints-*.yml)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1/5 of the messages per user (not for figures)")
    parser.add_argument("--sequential", action="store_true",
                        help="one server at a time instead of all up and the loads interleaved")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each load per server; the median-throughput run is "
                             "reported (one c10 run is only 200 messages, about 2 s)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stops the servers
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    loads = {k: (u, max(2, n // 5) if args.quick else n, f) for k, (u, n, f) in LOADS.items()}

    for name, value in (("RASA_TELEMETRY_ENABLED", "false"), ("TQDM_DISABLE", "1"),
                        ("PYTHONPATH", str(ROOT))):
        os.environ[name] = value
    unknown = set(servers) - {"ours", "stock", "production", *VARIANTS}
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    if not launch.MODEL.exists() and (set(servers) - {"stock"}):
        log(f"{launch.MODEL} is missing: run `make train` (make bench does) first")
        return 2

    token = pysecrets.token_urlsafe(24)
    results: Dict = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "run_id": uuid.uuid4().hex[:8],
            "quick": args.quick,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "rasa": stock_bot.rasa_version(),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "loads": {k: {"users": u, "messages_per_user": n, "in_flight": f}
                      for k, (u, n, f) in loads.items()},
            "rounds": args.rounds,
            "request_timeout_s": REQUEST_TIMEOUT_S,
            "latency": "ms per message, client side (aiohttp on the same machine), successful "
                       "messages only; msgs_per_s = successful messages / wall time of the load",
            "rss": "rss_mb at the top level of each server's entry: sum of VmRSS of the server's "
                   "process trees read after all three loads (ours: Rasa + action server; "
                   "production: Rasa processes + action server + nginx; web server not counted; "
                   "PostgreSQL and Redis not counted)",
        }
    }
    run_id = results["meta"]["run_id"]
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        run_dir = Path(tmp)
        chosen: List[Server] = []
        for name in ("ours", *VARIANTS, "stock", "production"):
            if name not in servers:
                continue
            if name == "ours" or name in VARIANTS:
                extra = {"profile": "default"} if stack_supports_production() else {}
                endpoints = ROOT / "bench" / VARIANTS[name] if name in VARIANTS else None
                chosen.append(StackServer(name, run_id, run_dir, token, endpoints, **extra))
            elif name == "stock":
                chosen.append(StockServer(name, run_id, run_dir, token))
            else:
                stack_args, gap = production_args()
                if gap:
                    log(f"production: not run: {gap}")
                    results[name] = {"skipped": gap}
                    continue
                chosen.append(StackServer(name, run_id, run_dir, token, **stack_args))
        results["meta"]["order"] = "sequential" if args.sequential else "interleaved"
        try:
            if args.sequential:
                # one server at a time: started, loaded, measured, stopped
                for server in chosen:
                    server.up()
                    for load, spec in loads.items():
                        server.entry[load] = median_round(
                            [run_one_load(server, load, spec, r) for r in range(args.rounds)])
                    server.check_alive()
                    server.measure_memory()
                    server.stop()
            else:
                # all up (idle servers use no CPU), then each round of each load on each server
                # in turn, so that a change in the machine's other work hits all servers alike
                for server in chosen:
                    server.up()
                for load, spec in loads.items():
                    rounds: Dict[str, List[Dict]] = {server.name: [] for server in chosen}
                    for round_ in range(args.rounds):
                        for server in chosen:
                            rounds[server.name].append(run_one_load(server, load, spec, round_))
                            server.check_alive()
                    for server in chosen:
                        server.entry[load] = median_round(rounds[server.name])
                for server in chosen:
                    server.measure_memory()
        finally:
            for server in chosen:
                server.stop()
        for server in chosen:
            server.entry["log_errors"] = server.log_errors()
            results[server.name] = server.entry

    results["ratios"] = ratios(results)
    results["targets"] = check_targets(results)
    results["meta"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    print()
    print(table(results))
    print()
    print("ratios (ours/stock, production/stock; lower is better for p50/p95/rss):")
    for key, value in results["ratios"].items():
        print(f"  {key:<30} {fmt(value, 7)}")
    print()
    print("targets:")
    for check in results["targets"]:
        state = {True: "MET", False: "NOT MET", None: "NOT MEASURED"}[check["met"]]
        print(f"  [{state:>12}] {check['target']}: {check['value']}")
    print()
    print(f"load average before/after: {results['meta']['loadavg_before']} / "
          f"{results['meta']['loadavg_after']} on {results['meta']['cpus']} CPUs "
          f"(other work on the machine makes the figures noisy)")
    print(f"written: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
