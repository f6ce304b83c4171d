"""Privacy: the logs (INFO and above) hold no message text; telemetry is off everywhere.

(The production profile's logs, nginx's included: tests/e2e/test_production.py.)
"""
import subprocess
import time
import uuid
from pathlib import Path

import requests
import yaml

from stack.launch import BIN, ROOT

WEBHOOK = "/webhooks/rest/webhook"


def stored_user_texts(stack, sender):
    response = requests.get(f"{stack.rasa_api_url}/conversations/{sender}/tracker",
                            params={"token": stack.secrets["RASA_AUTH_TOKEN"]}, timeout=30)
    response.raise_for_status()
    return [e.get("text") or "" for e in response.json()["events"] if e["event"] == "user"]


def test_logs_hold_no_message_text(stack, chat):
    marker = f"zebra-marker-{uuid.uuid4().hex}"
    url = f"{stack.rasa_url}{WEBHOOK}"
    chat(f"what is the trial {marker}")
    chat(f"my husband is very drowsy since his refill and i cant wake him up {marker}")
    chat(f"can i talk to a nurse please {marker}")
    # failing validation: too long, a bad sender, not JSON
    assert requests.post(url, json={"sender": chat.sender, "message": f"{marker} " + "x" * 6000},
                         timeout=30).status_code == 413
    assert requests.post(url, json={"sender": [marker], "message": marker},
                         timeout=30).status_code == 400
    assert requests.post(url, data=f'{{"sender": "x", "message": "{marker}',
                         headers={"Content-Type": "application/json"},
                         timeout=30).status_code == 400
    # an escalation while the action server is down: Rasa logs the failed action
    stack.stop_actions()
    try:
        assert chat(f"my pump keeps beeping and wont stop {marker}")
    finally:
        stack.start_actions()
    assert sum(marker in text for text in stored_user_texts(stack, chat.sender)) == 4
    time.sleep(1)  # let every process write its last lines

    logs = [p for p in Path(stack.log_dir).rglob("*") if p.is_file()]
    assert any(p.name.startswith("rasa-") for p in logs)
    assert any(p.name.startswith("actions-") for p in logs)
    for path in logs:
        assert marker not in path.read_text(errors="replace"), f"message text in {path}"


def test_telemetry_is_off_in_every_process(stack):
    for name, process in stack.processes.items():
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert b"RASA_TELEMETRY_ENABLED=false" in environ, name


def test_rasa_reports_telemetry_disabled(stack):
    result = subprocess.run([str(BIN / "rasa"), "telemetry"], env=stack.env(), cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert "Telemetry reporting is currently disabled" in result.stdout, result.stdout[-500:]


def test_the_global_rasa_config_does_not_enable_telemetry():
    """`make install` runs `rasa telemetry disable`, so it is off even without the variable."""
    config = Path.home() / ".config" / "rasa" / "global.yml"
    if config.exists():
        metrics = (yaml.safe_load(config.read_text()) or {}).get("metrics") or {}
        assert metrics.get("enabled") is not True, f"telemetry is enabled in {config}"
