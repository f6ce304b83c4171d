"""End to end through the REST channel: answers, follow-ups in context, and bad input."""
import json

import pytest
import requests

PHONE = "(470) 299-1998"


def texts(messages):
    return " ".join(m.get("text", "") for m in messages)


def test_greeting_offers_quick_replies(chat):
    reply = chat("hi there")
    assert "pain pump" in texts(reply)
    assert any(m.get("buttons") for m in reply)


@pytest.mark.parametrize("question,expected", [
    ("what is an intrathecal pain pump", "directly to the spinal cord"),
    ("how much morphine compared to pills", "1/300"),
    ("how long is the trial", "24-48 hours"),
    ("how do they refill the pump", "fill port"),
    ("will i be asleep for the implant", "general anesthesia"),
    ("whats the recovery like", "24 hours"),
    ("can the pump be taken out later", "reversible"),
    ("what's your phone number", PHONE),
])
def test_page_questions_get_page_answers(chat, question, expected):
    assert expected in texts(chat(question))


@pytest.mark.parametrize("question", [
    "how much does the pump cost",
    "is it covered by medicare",
    "what are the side effects",
    "can i get an MRI with a pump",
    "how long does the battery last",
])
def test_questions_the_page_does_not_answer_get_the_number(chat, question):
    reply = texts(chat(question))
    assert "don't have that information" in reply
    assert PHONE in reply


def test_off_topic_gets_an_honest_answer(chat):
    reply = texts(chat("who won the football game last night"))
    assert "don't have that information" in reply and PHONE in reply


def test_follow_up_is_answered_about_the_topic(chat):
    chat("tell me about the trial")
    assert "24-48 hours" in texts(chat("how long does it take?"))
    chat("how is the pump refilled")
    assert "fairly painless" in texts(chat("does it hurt?"))


def test_follow_up_without_context_asks_what_is_meant(chat):
    reply = chat("how long does it take?")
    assert any(m.get("buttons") for m in reply)


def test_quick_reply_payload_answers(chat):
    assert "24-48 hours" in texts(chat("/ask_trial"))


@pytest.mark.parametrize("message", [
    "",
    "   \n\t ",
    "😀😀😀",
    "x" * 10_000,
    "¿Cuánto cuesta la bomba de dolor?",
    "<script>alert(1)</script><b>hi</b>",
    "\x00\x01\x02",
])
def test_bad_input_gets_a_reply_not_an_error(stack, chat, message):
    reply = chat(message)
    assert reply, "no reply at all"
    assert PHONE in texts(reply) or any(m.get("buttons") for m in reply)
    # and the conversation goes on
    assert "24-48 hours" in texts(chat("how long is the trial"))


@pytest.mark.parametrize("body", [
    b"{not json",
    b"[]",
    json.dumps({"sender": "x"}).encode(),
    json.dumps({"message": 5, "sender": "x"}).encode(),
    json.dumps({"message": "hi", "sender": ["x"]}).encode(),
])
def test_malformed_requests_get_a_clear_4xx(stack, body):
    response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", data=body,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
