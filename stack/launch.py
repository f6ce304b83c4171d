"""Starts and stops the assistant's processes: the action server and the Rasa server.

`make run` runs this module in the foreground; the end-to-end tests use `Stack` to start the
same processes on free ports. One place knows how the servers are started.
"""
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

from stack import secrets

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
MODEL = ROOT / "models" / "clinic.tar.gz"
STARTUP_TIMEOUT_S = 180


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

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

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
            "ACTION_ENDPOINT_URL": f"{self.action_url}/webhook",
            "TRACKER_SQLITE_DB": str(self.tracker_db),
        }

    def start_actions(self) -> None:
        self._spawn(
            "actions",
            [str(BIN / "rasa"), "run", "actions", "--port", str(self.action_port),
             "--actions", "actions"],
        )
        wait_until_up(f"{self.action_url}/health", process=self.processes["actions"])

    def stop_actions(self) -> None:
        self._stop("actions")

    def start_rasa(self) -> None:
        # The HTTP API is only ever on with a token (CVE-2024-49375: open model upload).
        self._spawn(
            "rasa",
            [str(BIN / "rasa"), "run", "--model", str(MODEL), "--port", str(self.rasa_port),
             "--interface", "127.0.0.1", "--endpoints", str(ROOT / "endpoints.yml"),
             "--credentials", str(ROOT / "credentials.yml"), "--cors", *self.cors.split(),
             "--enable-api", "--auth-token", self.secrets["RASA_AUTH_TOKEN"]],
        )
        wait_until_up(f"{self.rasa_url}/", process=self.processes["rasa"])

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
        self.start_actions()
        self.start_rasa()
        self.start_web()
        return self

    def stop(self) -> None:
        for name in list(self.processes):
            self._stop(name)

    def _spawn(self, name: str, command: List[str]) -> None:
        log = open(self.log_dir / f"{name}-{self.rasa_port}.log", "ab")
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> None:
    values, new_password = secrets.load()
    stack = Stack(secrets=values)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        print("Starting the action server, the Rasa server and the web server (about 30 s)...",
              flush=True)
        stack.start()
        if new_password:
            print(f"\nA staff password was generated and saved in {secrets.secrets_file()}:\n"
                  f"  {values['STAFF_PASSWORD']}", flush=True)
        print(f"\nThe assistant is running.\n"
              f"  REST channel: POST {stack.rasa_url}/webhooks/rest/webhook "
              f'with {{"sender": "me", "message": "what is a pain pump?"}}\n'
              f"  Chat on the clinic's page: {stack.web_url}/\n"
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
