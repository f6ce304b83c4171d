"""Rasa NLU component that checks every message for a present, urgent problem.

It runs after the intent classifier and the FallbackClassifier. The rule-based
UrgencyDetector (clinic_nlu/urgency_detector.py, patterns in urgency_patterns.yml) is the
only judge of emergencies and urgent problems: its behaviour is measured on a labelled table,
the statistical classifier's is not. When it fires, the message's intent becomes the
escalation intent (report_emergency / report_urgent / request_human), the reason becomes
the `urgency_reason` entity, and the FAQ question a mixed message also asked is kept in
`urgency.question_intent` for action_escalate to answer.
"""
import logging
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from clinic_nlu.urgency_detector import Detection, UrgencyDetector

logger = logging.getLogger(__name__)

LEVEL_INTENTS = {
    "emergency": "report_emergency",
    "urgent": "report_urgent",
    "handoff": "request_human",
}
# Only the detector may decide these two; a classifier guess alone is not an escalation.
DETECTOR_ONLY_INTENTS = {"report_emergency", "report_urgent"}
NOT_A_QUESTION = set(LEVEL_INTENTS.values()) | {"nlu_fallback"}
# Asking for a person is safe to act on from the classifier alone: it only gives the number.
CLASSIFIER_HANDOFF = Detection(level="handoff", reason="ask_person")
URGENCY_KEY = "urgency"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class UrgencyComponent(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # A mixed message's FAQ part is answered when its intent is at least this likely.
            "question_threshold": 0.2,
            # Must match the FallbackClassifier threshold in config.yml.
            "fallback_threshold": 0.35,
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        self._question_threshold = config["question_threshold"]
        self._fallback_threshold = config["fallback_threshold"]
        self._detector = UrgencyDetector.from_yaml()

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "UrgencyComponent":
        return cls(config)

    def process_training_data(self, training_data: Any) -> Any:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._process_one(message)
        return messages

    def _process_one(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        detection = self._detector.detect(message.get(SPACY_DOCS[TEXT]) or text)
        ranking = self._ranking(message)
        if detection is None:
            self._veto_unconfirmed_urgency(message, ranking)
            if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) != LEVEL_INTENTS["handoff"]:
                return
            detection = CLASSIFIER_HANDOFF
        question = self._best_question(ranking)
        message.set(
            URGENCY_KEY,
            {
                "level": detection.level,
                "reason": detection.reason,
                "question_intent": question,
            },
            add_to_output=True,
        )
        message.set(
            INTENT,
            {INTENT_NAME_KEY: LEVEL_INTENTS[detection.level], PREDICTED_CONFIDENCE_KEY: 1.0},
            add_to_output=True,
        )
        entities = [e for e in message.get(ENTITIES, []) if e.get("entity") != "urgency_reason"]
        entities.append(
            {
                "entity": "urgency_reason",
                "value": detection.reason,
                "start": 0,
                "end": len(text),
                "extractor": self.__class__.__name__,
            }
        )
        message.set(ENTITIES, entities, add_to_output=True)

    @staticmethod
    def _ranking(message: Message) -> List[Dict[Text, Any]]:
        ranking = message.get(INTENT_RANKING_KEY) or []
        return sorted(ranking, key=lambda r: -r.get(PREDICTED_CONFIDENCE_KEY, 0.0))

    def _best_question(self, ranking: List[Dict[Text, Any]]) -> Optional[Text]:
        for candidate in ranking:
            if candidate[INTENT_NAME_KEY] in NOT_A_QUESTION:
                continue
            if candidate[PREDICTED_CONFIDENCE_KEY] >= self._question_threshold:
                return candidate[INTENT_NAME_KEY]
            return None
        return None

    def _veto_unconfirmed_urgency(
        self, message: Message, ranking: List[Dict[Text, Any]]
    ) -> None:
        """The classifier said emergency/urgent but the detector did not: use the next intent."""
        intent = message.get(INTENT) or {}
        if intent.get(INTENT_NAME_KEY) not in DETECTOR_ONLY_INTENTS:
            return
        for candidate in ranking:
            name = candidate[INTENT_NAME_KEY]
            if name in DETECTOR_ONLY_INTENTS or name == "nlu_fallback":
                continue
            confidence = candidate[PREDICTED_CONFIDENCE_KEY]
            if confidence >= self._fallback_threshold:
                message.set(INTENT, dict(candidate), add_to_output=True)
                return
            break
        message.set(
            INTENT,
            {INTENT_NAME_KEY: "nlu_fallback", PREDICTED_CONFIDENCE_KEY: 1.0},
            add_to_output=True,
        )
