"""The production profile against the real services: PostgreSQL, Redis, nginx, 2 Rasa processes.

One conversation may be answered by any Rasa process (shared tracker store and lock store);
nothing is lost under concurrent load; the public address serves only the chat. These tests run
first in the session (tests/e2e/conftest.py) and stop their stack before the shared one starts.
"""
import concurrent.futures
import time
import uuid

import pytest
import requests

from stack.launch import Stack, free_port
from stack import production as production_profile

WEBHOOK = "/webhooks/rest/webhook"


def texts(messages):
    return " ".join(m.get("text") or "" for m in messages)


@pytest.fixture(scope="module")
def production(production_settings, tmp_path_factory):
    token = f"test-token-{uuid.uuid4().hex}"
    web_port = free_port()
    servers = Stack(rasa_port=free_port(), action_port=free_port(), web_port=web_port,
                    cors=f"http://127.0.0.1:{web_port}", profile="production", rasa_workers=2,
                    settings=production_settings, data_dir=tmp_path_factory.mktemp("prod"),
                    secrets={"RASA_AUTH_TOKEN": token,
                             "STAFF_PASSWORD": f"test-password-{uuid.uuid4().hex}"})
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


def post(url, sender, message, timeout=120):
    response = requests.post(f"{url}{WEBHOOK}", json={"sender": sender, "message": message},
                             timeout=timeout)
    response.raise_for_status()
    return response.json()


def user_messages(stack, sender, url=None):
    response = requests.get(f"{url or stack.rasa_api_url}/conversations/{sender}/tracker",
                            params={"token": stack.secrets["RASA_AUTH_TOKEN"]}, timeout=30)
    response.raise_for_status()
    return [e.get("text") for e in response.json()["events"] if e["event"] == "user"]


def test_two_rasa_processes_behind_one_address(production):
    assert len(production.backend_urls) == 2
    pids = {production.processes[name].pid for name in ("rasa-1", "rasa-2")}
    assert len(pids) == 2
    assert production.rasa_url not in production.backend_urls
    for url in [production.rasa_url, *production.backend_urls]:
        assert requests.get(f"{url}/", timeout=10).status_code == 200


def test_conversation_alternating_between_processes_keeps_its_context(production):
    first, second = production.backend_urls
    sender = f"alt-{uuid.uuid4().hex[:12]}"
    assert "24-48 hours" in texts(post(first, sender, "what is the trial"))
    assert "24-48 hours" in texts(post(second, sender, "how long does it take?"))
    post(first, sender, "how is the pump refilled")
    assert "fairly painless" in texts(post(second, sender, "does it hurt?"))
    # each process sees the whole conversation
    expected = ["what is the trial", "how long does it take?", "how is the pump refilled",
                "does it hurt?"]
    for url in production.backend_urls:
        assert user_messages(production, sender, url) == expected


def test_one_conversation_stays_on_one_process(production):
    """nginx sends the messages of a conversation to one Rasa process, which then still holds
    its tracker in memory (clinic/tracker_cache.py); conversations spread over all processes."""
    log = production.log_dir / f"front-{production.rasa_port}-access.log"

    def webhook_lines():
        # '$time_iso8601 $status $request_method $uri $request_time $upstream_addr ...'
        return [line for line in log.read_text().splitlines() if " /webhooks/rest/webhook " in line]

    def processes_answering(sender):
        before = len(webhook_lines())
        for question in ("what is the trial", "how long does it take?", "does it hurt?"):
            post(production.rasa_url, sender, question)
        # nginx writes a request's log line just after its response has gone out
        deadline = time.monotonic() + 5
        while len(webhook_lines()) < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        return {line.split()[5] for line in webhook_lines()[before:before + 3]}

    # fixed ids: which process a conversation goes to must not depend on luck
    used = [processes_answering(f"sticky-{number}") for number in range(12)]
    assert all(len(processes) == 1 for processes in used), used
    assert set().union(*used) == {url.split("//")[1] for url in production.backend_urls}


def test_nothing_is_lost_under_concurrent_load(production):
    """20 visitors x 10 messages at once through the public address."""
    questions = ["what is the trial", "how long does it take?", "how do they refill the pump",
                 "does it hurt?", "will i be asleep for the implant", "whats the recovery like",
                 "can the pump be taken out later", "what is a pain pump", "hi",
                 "what's your phone number"]

    def visitor(i):
        sender = f"load-{i}-{uuid.uuid4().hex[:8]}"
        replies = [post(production.rasa_url, sender, q) for q in questions]
        return sender, replies

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(visitor, range(20)))
    for sender, replies in results:
        assert all(texts(reply) for reply in replies), sender
        assert user_messages(production, sender) == questions


def test_simultaneous_messages_of_one_conversation_on_both_processes(production):
    """The lock store: two processes never handle one conversation at the same time.

    With Rasa's own `type: redis` lock store, about 1 round in 6 lost messages here (answered,
    but missing from the conversation) or failed them: clinic/lock_store.py.
    """
    for _ in range(5):
        sender = f"same-{uuid.uuid4().hex[:12]}"
        messages = [f"what is the trial {i}" for i in range(10)]

        def send(i):
            return post(production.backend_urls[i % 2], sender, messages[i])

        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            replies = list(pool.map(send, range(10)))
        assert all("24-48 hours" in texts(reply) for reply in replies)
        tracker = requests.get(f"{production.rasa_api_url}/conversations/{sender}/tracker",
                               params={"token": production.secrets["RASA_AUTH_TOKEN"]},
                               timeout=30).json()
        turns = [e["event"] for e in tracker["events"] if e["event"] in ("user", "bot")]
        assert sorted(e["text"] for e in tracker["events"] if e["event"] == "user") == sorted(messages)
        # one message at a time: every message is answered before the next one is read
        assert not any(a == b == "user" for a, b in zip(turns, turns[1:])), turns


@pytest.mark.parametrize("method,path", [
    ("GET", "/status"),
    ("GET", "/version"),
    ("GET", "/domain"),
    ("GET", "/conversations/x/tracker"),
    ("POST", "/conversations/x/tracker/events"),
    ("PUT", "/model"),
    ("POST", "/model/parse"),
    ("POST", "/model/train"),
    ("DELETE", "/model"),
    ("GET", "/webhooks/rest/webhook"),
    ("GET", "/socket.io/"),
])
def test_the_public_address_hides_the_http_api(production, method, path):
    token = production.secrets["RASA_AUTH_TOKEN"]
    response = requests.request(method, f"{production.rasa_url}{path}", params={"token": token},
                                json={}, timeout=10)
    assert response.status_code in (403, 404, 405), (path, response.status_code)
    assert "rasa" not in response.text.lower()
    # while the same call does reach the API on a Rasa process's internal address
    if (method, path) == ("GET", "/status"):
        internal = requests.get(f"{production.rasa_api_url}/status", params={"token": token},
                                timeout=10)
        assert internal.status_code == 200


def test_the_public_address_serves_the_chat_and_health(production):
    assert requests.get(f"{production.rasa_url}/", timeout=10).status_code == 200
    assert requests.get(f"{production.rasa_url}/webhooks/rest/", timeout=10).json() == {"status": "ok"}
    assert "24-48 hours" in texts(post(production.rasa_url, "health-check", "how long is the trial"))


def test_the_public_address_refuses_large_bodies(production):
    body = b'{"sender": "big", "message": "' + b"x" * (1024 * 1024) + b'"}'
    response = requests.post(f"{production.rasa_url}{WEBHOOK}", data=body,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 413
    # and so does each Rasa process on its own (Sanic's REQUEST_MAX_SIZE)
    response = requests.post(f"{production.rasa_api_url}{WEBHOOK}", data=body,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 413


def test_cors_through_the_public_address(production):
    allowed, other = production.cors.split()[0], "https://evil.example"
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    ok = requests.options(f"{production.rasa_url}{WEBHOOK}",
                          headers={"Origin": allowed, **preflight}, timeout=10)
    assert ok.headers.get("Access-Control-Allow-Origin") == allowed
    for response in (
        requests.options(f"{production.rasa_url}{WEBHOOK}", headers={"Origin": other, **preflight},
                         timeout=10),
        requests.post(f"{production.rasa_url}{WEBHOOK}", headers={"Origin": other},
                      json={"sender": "cors", "message": "hi"}, timeout=60),
    ):
        assert "Access-Control-Allow-Origin" not in response.headers


def test_logs_hold_no_message_text(production, max_message_chars):
    marker = f"zebra-marker-{uuid.uuid4().hex}"
    sender = f"privacy-{uuid.uuid4().hex[:8]}"
    url = production.rasa_url
    post(url, sender, f"what is the trial {marker}")
    post(url, sender, f"my pump keeps beeping and wont stop {marker}")
    too_long = requests.post(f"{url}{WEBHOOK}", timeout=30,
                             json={"sender": sender,
                                   "message": f"{marker} " + "x" * max_message_chars})
    assert too_long.status_code == 413
    not_a_sender = requests.post(f"{url}{WEBHOOK}", timeout=30,
                                 json={"sender": [marker], "message": marker})
    assert not_a_sender.status_code == 400
    assert any(marker in text for text in user_messages(production, sender))  # it was stored
    logs = [p for p in production.log_dir.iterdir() if p.is_file()]
    assert any(str(production.rasa_port) in p.name for p in logs)
    token = production.secrets["RASA_AUTH_TOKEN"]  # sent to the public address above
    for path in logs:
        content = path.read_text(errors="replace")
        assert marker not in content, path
        assert token not in content, path


def test_purge_in_postgresql(production, purge_check):
    purge_check(production, production_profile.tracker_db_url(production.settings),
                lambda sender, text: post(production.rasa_url, sender, text), "production")


def test_one_process_down_the_public_address_still_answers(production):
    """Runs last: it restarts a Rasa process."""
    sender = f"failover-{uuid.uuid4().hex[:8]}"
    assert "24-48 hours" in texts(post(production.rasa_url, sender, "what is the trial"))
    production.stop_rasa(0)
    try:
        for _ in range(4):
            assert "24-48 hours" in texts(post(production.rasa_url, sender, "how long does it take?"))
    finally:
        production.start_rasa(0)
    assert len(user_messages(production, sender, production.backend_urls[1])) == 5


def test_postgresql_down_gives_a_clear_error_with_the_number_then_recovers(production):
    """Stopping the tracker store's database: the visitor gets the clinic's number, not silence,
    and the assistant answers again once the database is back."""
    import subprocess

    from tests.e2e.conftest import START_POSTGRES, ensure_services

    phone = "(470) 299-1998"
    sender = f"pgdown-{uuid.uuid4().hex[:8]}"
    assert "24-48 hours" in texts(post(production.rasa_url, sender, "what is the trial"))
    subprocess.run(START_POSTGRES.replace(" start", " stop -m fast"), shell=True, check=True)
    try:
        response = requests.post(f"{production.rasa_url}{WEBHOOK}", timeout=120,
                                 json={"sender": sender, "message": "how long does it take"})
        assert response.status_code == 503, response.text[:300]
        assert phone in texts(response.json()) and "911" in texts(response.json())
    finally:
        ensure_services()
    for _attempt in range(20):  # pooled connections to the old server are dropped, then renewed
        response = requests.post(f"{production.rasa_url}{WEBHOOK}", timeout=120,
                                 json={"sender": sender, "message": "what is the trial"})
        if response.status_code == 200 and "24-48 hours" in texts(response.json()):
            break
    else:
        pytest.fail(f"no recovery after PostgreSQL came back: {response.status_code}")
