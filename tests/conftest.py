"""Shared fixtures: the running servers, started once per test run on free ports.

The model is trained once by `make train` before the tests run (see Makefile) and shared
by every test that needs a server.
"""
import uuid

import pytest
import requests

from stack.launch import MODEL, Stack, free_port


TEST_SECRETS = {"RASA_AUTH_TOKEN": f"test-token-{uuid.uuid4().hex}",
                "STAFF_PASSWORD": f"test-password-{uuid.uuid4().hex}"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` first")
    web_port = free_port()  # the clinic's page; the Rasa server lets its origin in (CORS)
    servers = Stack(rasa_port=free_port(), action_port=free_port(), web_port=web_port,
                    cors=f"http://127.0.0.1:{web_port}", secrets=TEST_SECRETS,
                    data_dir=tmp_path_factory.mktemp("var")).start()
    yield servers
    servers.stop()


@pytest.fixture
def chat(stack):
    """Sends messages as one new visitor through the REST channel; returns the bot's messages."""
    sender = f"test-{uuid.uuid4().hex[:12]}"

    def send(message, sender_id=sender, timeout=30):
        response = requests.post(
            f"{stack.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender_id, "message": message},
            timeout=timeout,
        )
        response.raise_for_status()
        return response.json()

    send.sender = sender
    return send
