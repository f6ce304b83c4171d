"""action_escalate: runs after the static escalation reply of data/rules/urgency.yml.

The visitor already has the phone number (and 911) from that reply, so this action only
records the escalation and answers the FAQ question a mixed message also asked
("how often is it refilled? btw the skin near my pump is red").
"""
import json
import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

logger = logging.getLogger(__name__)

LEVELS = {
    "report_emergency": "emergency",
    "report_urgent": "urgent",
    "request_human": "handoff",
}


class ActionEscalate(Action):
    def name(self) -> Text:
        return "action_escalate"

    def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        message = tracker.latest_message or {}
        urgency = message.get("urgency") or {}
        level = urgency.get("level") or LEVELS.get((message.get("intent") or {}).get("name"))
        # One structured line per escalation; never the visitor's words (health information).
        logger.info(
            json.dumps(
                {
                    "event": "escalation",
                    "conversation_id": tracker.sender_id,
                    "level": level,
                    "reason": urgency.get("reason") or tracker.get_slot("urgency_reason"),
                }
            )
        )
        return self._answer_question(urgency.get("question_intent"), dispatcher, domain)

    @staticmethod
    def _answer_question(
        intent: Any, dispatcher: CollectingDispatcher, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        """Topic intents are named ask_<topic> and answered by utter_<topic>."""
        if not intent or not intent.startswith("ask_"):
            return []
        topic = intent[len("ask_"):]
        response = f"utter_{topic}"
        if response not in domain.get("responses", {}):
            # ask_not_on_page, or a follow-up ("how long?") that has no context here
            dispatcher.utter_message(response="utter_no_info")
            return []
        dispatcher.utter_message(response=response)
        return [SlotSet("topic", topic)]
