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


def test_logs_hold_no_message_text(stack, chat, max_message_chars):
    marker = f"zebra-marker-{uuid.uuid4().hex}"
    url = f"{stack.rasa_url}{WEBHOOK}"
    chat(f"what is the trial {marker}")
    chat(f"my husband is very drowsy since his refill and i cant wake him up {marker}")
    chat(f"can i talk to a nurse please {marker}")
    # failing validation: too long, a bad sender, not JSON
    too_long = f"{marker} " + "x" * max_message_chars
    assert requests.post(url, json={"sender": chat.sender, "message": too_long},
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


def test_debug_level_still_keeps_message_text_out(stack):
    """Rasa logs the text at DEBUG; stack/logging.yml pins the loggers that do at INFO, so even
    LOG_LEVEL=DEBUG (troubleshooting) does not log it. Checked the way `rasa run` applies it."""
    from stack.launch import LOGGING_CONFIG

    code = (
        "import logging\n"
        "from rasa.utils.common import configure_logging_and_warnings\n"
        f"configure_logging_and_warnings(logging.DEBUG, {str(LOGGING_CONFIG)!r})\n"
        "names = ['rasa.core.processor', 'rasa.core.policies.rule_policy', 'rasa.core.actions.action',\n"
        "         'rasa.nlu.classifiers.fallback_classifier', 'rasa.shared.core.trackers',\n"
        "         'rasa.core.tracker_store', 'rasa.server', 'clinic.rest_channel',\n"
        "         'clinic_nlu.urgency_component']\n"
        "print([n for n in names if logging.getLogger(n).isEnabledFor(logging.DEBUG)])\n"
        "print(logging.getLogger('rasa').isEnabledFor(logging.DEBUG))\n"
    )
    result = subprocess.run([str(BIN / "python"), "-c", code], env=stack.env(), cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    leaking, rasa_debug = result.stdout.split("\n")[-3:-1]
    assert rasa_debug == "True"  # the level did apply ...
    assert leaking == "[]"       # ... but not to the loggers that see message text
