"""Urgent messages through the REST channel against the running servers.

`rasa test` stories do not run custom actions, so the escalation contract (text with the number,
the payload, the FAQ answer of a mixed message, and the fallback with the action server down)
is checked here, end to end.
"""
import pytest

PHONE = "(470) 299-1998"


def texts(messages):
    return " ".join(m.get("text") or "" for m in messages)


def escalations(messages):
    return [m["custom"] for m in messages if (m.get("custom") or {}).get("type") == "escalation"]


@pytest.mark.parametrize("message,level", [
    ("my husband is very drowsy since his refill and i cant wake him up", "emergency"),
    ("cant breath", "emergency"),
    ("my pump keeps beepin and wont stop", "urgent"),
    ("the incision near my pump is red and leaking", "urgent"),
    ("can i talk to a nurse please", "handoff"),
])
def test_each_level_gets_the_number_and_the_payload(chat, message, level):
    reply = chat(message)
    assert PHONE in texts(reply)
    (payload,) = escalations(reply)
    assert payload["level"] == level
    assert payload["phone"] == "+14702991998"
    assert payload["reason"] and payload["reason"] != "None"
    assert ("911" in texts(reply)) == (level in ("emergency", "urgent"))
    if level == "emergency":
        assert texts(reply).index("911") < texts(reply).index(PHONE)


def test_mixed_message_escalates_first_then_answers(chat):
    reply = chat("how often is the pump refilled? btw the skin near my pump is red and warm")
    assert escalations(reply)[0]["level"] == "urgent"
    assert reply[0]["text"].startswith("That needs the clinic's attention")
    assert "fill port" in texts(reply[1:])


@pytest.mark.parametrize("message", [
    "does the pump have an alarm?",
    "no fever, no redness, just wondering about refills",
    "nothing helps my back pain, could a pump help?",
])
def test_benign_mentions_are_answered_not_escalated(chat, message):
    reply = chat(message)
    assert not escalations(reply)
    assert texts(reply)


def test_fever_after_surgery_question_gets_the_honest_reply(chat):
    reply = chat("what if I get a fever after surgery?")
    assert not escalations(reply)
    assert "don't have that information" in texts(reply) and PHONE in texts(reply)


def test_conversation_goes_on_after_an_escalation(chat):
    chat("my pump alarm is going off")
    assert "24-48 hours" in texts(chat("what is the trial"))
    assert "24-48 hours" in texts(chat("how long does it take"))


def test_escalation_reaches_the_visitor_with_the_action_server_down(stack, chat):
    stack.stop_actions()
    try:
        reply = chat("my wife is having a seizure")
        assert "911" in texts(reply) and PHONE in texts(reply)
        assert escalations(reply)[0]["level"] == "emergency"
        urgent = chat("my pump is beeping")
        assert PHONE in texts(urgent)
        assert "24-48 hours" in texts(chat("how long is the trial"))
    finally:
        stack.start_actions()
    # and everything works again once it is back
    assert "fill port" in texts(chat("how often is the pump refilled? btw my pump is alarming"))
