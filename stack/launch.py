"""Starts and stops the assistant's processes: the action server and the Rasa server.

`make run` runs this module in the foreground; the end-to-end tests use `Stack` to start the
same processes on free ports. One place knows how the servers are started.

Two profiles: "default" (one Rasa process, conversations in SQLite under the data dir) and
"production" (`make run PROFILE=production`: PostgreSQL and Redis, several Rasa processes
behind one nginx address; stack/production.py).
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from stack import production, secrets

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
MODEL = ROOT / "models" / "clinic.tar.gz"
STARTUP_TIMEOUT_S = 180
# Rasa logs at INFO and above, without message text (tests/e2e/test_privacy.py).
LOGGING_CONFIG = ROOT / "stack" / "logging.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout: float = STARTUP_TIMEOUT_S, process: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


def base_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        HF_HUB_OFFLINE="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        PYTHONPATH=str(ROOT),
    )
    return env


@dataclass
class Stack:
    """The action server and the Rasa server, started on the given ports."""

    rasa_port: int = 5005
    action_port: int = 5055
    web_port: int = 8080
    log_dir: Path = ROOT / "logs"
    # Conversations (SQLite tracker store) live here, so a restart loses nothing.
    data_dir: Path = ROOT / "var"
    # RASA_AUTH_TOKEN and STAFF_PASSWORD (stack/secrets.py); tests pass their own.
    secrets: Dict[str, str] = field(default_factory=dict)
    cors: str = "http://127.0.0.1:8080 http://localhost:8080"
    processes: Dict[str, subprocess.Popen] = field(default_factory=dict)
    # "default" or "production" (settings: stack/production.py). In production, rasa_port is
    # nginx's public address in front of `rasa_workers` Rasa processes on `backend_ports`.
    profile: str = "default"
    rasa_workers: int = 1
    settings: Dict[str, str] = field(default_factory=dict)
    backend_ports: List[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.profile not in ("default", "production"):
            raise ValueError(f"unknown profile {self.profile!r}")
        if self.profile == "default" and self.rasa_workers != 1:
            raise ValueError("the default profile runs one Rasa process (SQLite, in-memory "
                             "locks); use the production profile for more")
        if self.profile == "production":
            self.backend_ports = self.backend_ports or [free_port() for _ in range(self.rasa_workers)]
            self.rasa_workers = len(self.backend_ports)
        else:
            self.backend_ports = [self.rasa_port]

    @property
    def rasa_url(self) -> str:
        """The public address: the REST channel (in production through nginx)."""
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def backend_urls(self) -> List[str]:
        """Each Rasa process's own address (in production internal: the HTTP API is there)."""
        return [f"http://127.0.0.1:{port}" for port in self.backend_ports]

    @property
    def rasa_api_url(self) -> str:
        """Where the token-guarded HTTP API answers (not through the public nginx address)."""
        return self.backend_urls[0]

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def tracker_db(self) -> Path:
        return self.data_dir / "conversations.db"

    def env(self) -> Dict[str, str]:
        """What every process gets: where the others are, where data goes, the secrets."""
        return {
            **base_env(),
            **self.secrets,
            **self.settings,
            "ACTION_ENDPOINT_URL": f"{self.action_url}/webhook",
            "TRACKER_SQLITE_DB": str(self.tracker_db),
            # The staff pages' web server reaches the token-guarded HTTP API here (web/staff.py).
            "RASA_API_URL": self.rasa_api_url,
            # Sanic answers a larger request body with 413 (nginx does too, in production),
            # and writes no access log (URLs can hold the API token).
            "SANIC_REQUEST_MAX_SIZE": str(production.REQUEST_MAX_BYTES),
            "SANIC_ACCESS_LOG": "false",
        }

    @property
    def endpoints(self) -> Path:
        return production.ENDPOINTS if self.profile == "production" else ROOT / "endpoints.yml"

    def start_actions(self) -> None:
        # The Rasa server posts whole conversations to the action server (not public): no limit.
        env = {k: v for k, v in self.env().items() if k != "SANIC_REQUEST_MAX_SIZE"}
        self._spawn(
            "actions",
            [str(BIN / "rasa"), "run", "actions", "--port", str(self.action_port),
             "--actions", "actions"],
            env=env,
        )
        wait_until_up(f"{self.action_url}/health", process=self.processes["actions"])

    def stop_actions(self) -> None:
        self._stop("actions")

    def kill_actions(self) -> None:
        """A crash rather than a shutdown (fault tests)."""
        self._stop("actions", signal.SIGKILL)

    def _rasa_names(self) -> List[str]:
        if self.profile == "default":
            return ["rasa"]
        return [f"rasa-{i + 1}" for i in range(self.rasa_workers)]

    def start_rasa(self, index: Optional[int] = None) -> None:
        """Starts the Rasa process(es) (one after another: they create the tables)."""
        names = self._rasa_names()
        for i in ([index] if index is not None else range(len(names))):
            port = self.backend_ports[i]
            # The HTTP API is only ever on with a token (CVE-2024-49375: open model upload).
            self._spawn(
                names[i],
                [str(BIN / "rasa"), "run", "--model", str(MODEL), "--port", str(port),
                 "--interface", "127.0.0.1", "--endpoints", str(self.endpoints),
                 "--credentials", str(ROOT / "credentials.yml"), "--cors", *self.cors.split(),
                 "--enable-api", "--auth-token", self.secrets["RASA_AUTH_TOKEN"],
                 "--logging-config-file", str(LOGGING_CONFIG)],
            )
            wait_until_up(f"http://127.0.0.1:{port}/", process=self.processes[names[i]])

    def stop_rasa(self, index: Optional[int] = None) -> None:
        names = self._rasa_names()
        for name in ([names[index]] if index is not None else names):
            self._stop(name)

    def start_front(self) -> None:
        """Production: nginx on the public address, each conversation to one Rasa process."""
        config = production.write_nginx_config(self.rasa_port, self.backend_ports,
                                               self.log_dir, self.data_dir)
        self._spawn("front", [production.nginx_binary(), "-p", str(self.data_dir),
                              "-c", str(config),
                              "-e", str(self.log_dir / f"front-{self.rasa_port}-error.log")])
        wait_until_up(f"{self.rasa_url}/", process=self.processes["front"])

    def start_web(self) -> None:
        self._spawn(
            "web",
            [str(BIN / "python"), "-m", "web", "--port", str(self.web_port),
             "--rasa-url", self.rasa_url],
        )
        wait_until_up(f"{self.web_url}/", process=self.processes["web"])

    def start(self) -> "Stack":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.profile == "production":
            production.check_services(self.settings)
        self.start_actions()
        self.start_rasa()
        if self.profile == "production":
            self.start_front()
        self.start_web()
        return self

    def stop(self) -> None:
        for name in list(self.processes):
            self._stop(name)

    def _spawn(self, name: str, command: List[str], env: Optional[Dict[str, str]] = None) -> None:
        log = open(self.log_dir / f"{name}-{self.rasa_port}.log", "ab")
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=env or self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stack.launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("default", "production"), default="default")
    parser.add_argument("--env-file", type=Path, default=None,
                        help="production settings (default profiles/production.env)")
    args = parser.parse_args()
    values, new_password = secrets.load()
    if args.profile == "production":
        settings = production.load_settings(args.env_file)
        stack = Stack(secrets=values, profile="production", settings=settings,
                      rasa_workers=max(2, int(settings["RASA_WORKERS"])))
    else:
        stack = Stack(secrets=values)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        print(f"Starting the action server, {stack.rasa_workers} Rasa server process(es) and the "
              f"web server ({stack.profile} profile, about {30 * stack.rasa_workers} s)...",
              flush=True)
        stack.start()
        if new_password:
            print(f"\nA staff password was generated and saved in {secrets.secrets_file()}:\n"
                  f"  {values['STAFF_PASSWORD']}", flush=True)
        print(f"\nThe assistant is running.\n"
              f"  REST channel: POST {stack.rasa_url}/webhooks/rest/webhook "
              f'with {{"sender": "me", "message": "what is a pain pump?"}}\n'
              f"  Chat on the clinic's page: {stack.web_url}/\n"
              f"  HTTP API (token, internal): {', '.join(stack.backend_urls)}\n"
              f"  Logs: {stack.log_dir}/\n"
              f"Press Ctrl-C to stop everything.", flush=True)
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(1)
        print("A server stopped unexpectedly; see the logs. Stopping everything.", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    main()
