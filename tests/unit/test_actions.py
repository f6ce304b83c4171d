"""action_escalate, run as the action server runs it: a Tracker in, events and messages out."""
import json
import logging

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.escalation import ActionEscalate

DOMAIN = {"responses": {"utter_refill": [{"text": "..."}], "utter_no_info": [{"text": "..."}]}}


def tracker(intent, urgency=None, text="the visitor's private words"):
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    if urgency is not None:
        latest["urgency"] = urgency
    return Tracker("conv-42", {}, latest, [], False, None, {}, "action_listen")


def run(t):
    dispatcher = CollectingDispatcher()
    events = ActionEscalate().run(dispatcher, t, DOMAIN)
    return dispatcher.messages, events


def test_mixed_message_also_gets_its_question_answered():
    messages, events = run(tracker("report_urgent", {"level": "urgent", "reason": "site_infection",
                                                     "question_intent": "ask_refill"}))
    assert [m["response"] for m in messages] == ["utter_refill"]
    assert events == [SlotSet("topic", "refill")]


def test_pure_escalation_adds_nothing():
    messages, events = run(tracker("report_emergency", {"level": "emergency", "reason": "breathing",
                                                        "question_intent": None}))
    assert messages == [] and events == []


@pytest.mark.parametrize("question", ["ask_not_on_page", "ask_how_long"])
def test_question_without_a_page_answer_gets_the_honest_reply(question):
    messages, _ = run(tracker("report_urgent", {"level": "urgent", "reason": "pump_alarm",
                                                "question_intent": question}))
    assert [m["response"] for m in messages] == ["utter_no_info"]


def test_log_line_has_level_and_reason_but_never_the_text(caplog):
    caplog.set_level(logging.INFO, logger="actions.escalation")
    run(tracker("report_urgent", {"level": "urgent", "reason": "pump_alarm", "question_intent": None}))
    record = json.loads(caplog.records[-1].getMessage())
    assert record == {"event": "escalation", "conversation_id": "conv-42", "level": "urgent",
                      "reason": "pump_alarm"}
    assert "private words" not in caplog.text


def test_handoff_from_the_classifier_alone_is_logged_as_handoff(caplog):
    caplog.set_level(logging.INFO, logger="actions.escalation")
    run(tracker("request_human"))
    assert json.loads(caplog.records[-1].getMessage())["level"] == "handoff"
