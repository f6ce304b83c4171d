"""The action server killed while visitors are chatting: page answers go on, urgent messages still
get the clinic's number, and everything works again once it is back."""
import concurrent.futures
import uuid

import requests

PHONE = "(470) 299-1998"
FAQ = [("how long is the trial", "24-48 hours"), ("how do they refill the pump", "fill port"),
       ("can the pump be taken out later", "reversible")]
URGENT = ["my pump is beeping and wont stop", "my husband cant breathe after his refill"]


def send(stack, sender, message):
    response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", timeout=60,
                             json={"sender": sender, "message": message})
    response.raise_for_status()
    return " ".join(m.get("text") or "" for m in response.json())


def visitor(stack, rounds=6):
    """One visitor: page questions and urgent messages, one after another."""
    sender = f"fault-{uuid.uuid4().hex[:8]}"
    failures = []
    for i in range(rounds):
        question, expected = FAQ[i % len(FAQ)]
        if expected not in send(stack, sender, question):
            failures.append(question)
        urgent = URGENT[i % len(URGENT)]
        if PHONE not in send(stack, sender, urgent):
            failures.append(urgent)
    return failures


def test_action_server_killed_under_load(stack):
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        visitors = [pool.submit(visitor, stack) for _ in range(8)]
        stack.kill_actions()
        failures = [f for v in visitors for f in v.result()]
    try:
        assert failures == []
    finally:
        stack.start_actions()
    sender = f"fault-{uuid.uuid4().hex[:8]}"
    reply = send(stack, sender, "how often is the pump refilled? btw my pump is alarming")
    assert PHONE in reply and "fill port" in reply  # action_escalate answers the question again
