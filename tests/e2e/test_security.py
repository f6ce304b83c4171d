"""The Rasa server's HTTP API needs the token; CORS lets in only the clinic's page; bodies are
limited; no secret is in the repository. (The production front: tests/e2e/test_production.py.)"""
import subprocess

import pytest
import requests

from stack import production, secrets
from stack.launch import ROOT

API_CALLS = [
    ("GET", "/status"),
    ("GET", "/conversations/x/tracker"),
    ("POST", "/conversations/x/tracker/events"),
    ("POST", "/conversations/x/messages"),
    ("PUT", "/model"),
    ("DELETE", "/model"),
    ("POST", "/model/parse"),
    ("POST", "/model/train"),
    ("GET", "/domain"),
]


@pytest.mark.parametrize("method,path", API_CALLS)
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_the_http_api_refuses_a_missing_or_wrong_token(stack, method, path, token):
    params = {"token": token} if token else {}
    response = requests.request(method, f"{stack.rasa_api_url}{path}", params=params, json={},
                                timeout=30)
    assert response.status_code in (401, 403), (method, path, response.status_code)


def test_a_bearer_header_with_a_wrong_token_is_refused_too(stack):
    response = requests.get(f"{stack.rasa_api_url}/status", timeout=30,
                            headers={"Authorization": "Bearer wrong-token"})
    assert response.status_code in (401, 403)


def test_the_http_api_answers_with_the_token(stack):
    response = requests.get(f"{stack.rasa_api_url}/status", timeout=30,
                            params={"token": stack.secrets["RASA_AUTH_TOKEN"]})
    assert response.status_code == 200 and "model_id" in response.json()


PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type"}


def test_cors_allows_the_clinics_page(stack):
    origin = stack.cors.split()[0]
    response = requests.options(f"{stack.rasa_url}/webhooks/rest/webhook", timeout=30,
                                headers={"Origin": origin, **PREFLIGHT})
    assert response.headers.get("Access-Control-Allow-Origin") == origin


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:1", "null"])
def test_cors_refuses_other_origins(stack, origin):
    url = f"{stack.rasa_url}/webhooks/rest/webhook"
    preflight = requests.options(url, headers={"Origin": origin, **PREFLIGHT}, timeout=30)
    message = requests.post(url, headers={"Origin": origin},
                            json={"sender": "cors-test", "message": "hi"}, timeout=30)
    for response in (preflight, message):
        assert "Access-Control-Allow-Origin" not in response.headers


def test_request_body_size_is_limited(stack):
    assert stack.env()["SANIC_REQUEST_MAX_SIZE"] == str(production.REQUEST_MAX_BYTES)
    body = b'{"sender": "big", "message": "' + b"x" * (1024 * 1024) + b'"}'
    response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", data=body,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 413
    response = requests.put(f"{stack.rasa_api_url}/model", data=b"x" * (1024 * 1024),
                            params={"token": stack.secrets["RASA_AUTH_TOKEN"]}, timeout=30)
    assert response.status_code == 413


def test_the_body_limit_leaves_room_for_the_longest_message(max_message_chars):
    # every character JSON-escaped as a surrogate pair ("\ud83d\ude00": 12 bytes), plus the rest
    assert production.REQUEST_MAX_BYTES >= 12 * max_message_chars + 1024


def test_the_longest_message_still_gets_a_reply(stack, chat, max_message_chars):
    assert chat("😀" * max_message_chars)  # requests escapes each emoji: 12 bytes a character


def tracked_files():
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / name for name in listing.stdout.decode().split("\0") if name]


def test_no_secrets_in_the_repository(stack):
    values = [v for v in stack.secrets.values() if v]
    stored = secrets._read(secrets.secrets_file())  # the machine's own, if any
    values += [v for v in stored.values() if len(v) >= 12]
    assert values
    for path in tracked_files():
        if path.is_file() and path.stat().st_size < 5_000_000:
            content = path.read_bytes()
            for value in values:
                assert value.encode() not in content, f"a secret is in {path}"


def test_local_settings_files_are_not_committed():
    for name in ("profiles/production.env", ".env", "var/conversations.db"):
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT)
        assert ignored.returncode == 0, f"{name} is not in .gitignore"


def test_a_long_conversation_still_reaches_the_action_server(stack, chat, max_message_chars):
    """The body limit is for visitors' requests; the action server, which gets the whole
    conversation from the Rasa server, has none (stack/launch.py)."""
    long_message = "tell me about the pump " + "x" * (max_message_chars - 30)
    for _ in range(14):
        chat(long_message)
    tracker = requests.get(f"{stack.rasa_api_url}/conversations/{chat.sender}/tracker",
                           params={"token": stack.secrets["RASA_AUTH_TOKEN"]}, timeout=30)
    assert len(tracker.content) > 2 * production.REQUEST_MAX_BYTES
    chat("my pump keeps beeping and wont stop")
    actions_log = (stack.log_dir / f"actions-{stack.rasa_port}.log").read_text(errors="replace")
    assert f'"conversation_id": "{chat.sender}"' in actions_log, "action_escalate did not run"
