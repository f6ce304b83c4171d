"""Rasa NLU components that check every message for a present, urgent problem.

Two steps in config.yml, around the intent classifier:

- UrgencyCheck, right after the tokenizer, runs the UrgencyDetector (clinic_nlu/urgency_detector.py:
  patterns in urgency_patterns.yml, and the learned safety net behind them) on the whole message.
  When it fires on a message that also asks something ("how often is it refilled? btw the skin
  near my pump is red"), it hides the urgent sentence from the classifier, so the classifier
  sees the question alone.
- UrgencyEscalation, after the FallbackClassifier, turns a detection into the escalation intent
  (report_emergency / report_urgent / request_human) with the `urgency_reason` entity, and keeps
  the question's intent in `urgency.question_intent` for action_escalate to answer.

The detector is the only judge of emergencies and urgent problems: its behaviour is measured on a
labelled table, the statistical classifier's is not.
"""
import re
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic_nlu.urgency_detector import Detection, UrgencyDetector

LEVEL_INTENTS = {
    "emergency": "report_emergency",
    "urgent": "report_urgent",
    "handoff": "request_human",
}
# Only the detector may decide these two; a classifier guess alone is not an escalation.
DETECTOR_ONLY_INTENTS = {"report_emergency", "report_urgent"}
NOT_A_QUESTION = set(LEVEL_INTENTS.values()) | {"nlu_fallback", None}
# Asking for a person is safe to act on from the classifier alone: it only gives the number.
CLASSIFIER_HANDOFF = Detection(level="handoff", reason="ask_person")
URGENCY_KEY = "urgency"
# Set by UrgencyCheck for UrgencyEscalation; not part of the parse result.
DETECTION_KEY = "urgency_detection"
QUESTION_ONLY_KEY = "urgency_question_only"


class _UntrainedComponent(GraphComponent):
    """What Rasa asks of both components: made from their config alone, and training examples
    passed through as written (they learn nothing)."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class UrgencyCheck(_UntrainedComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # Where a message splits into parts that can be urgent or a question on their own.
        return {"part_breaks": ["btw", "by the way", "also", "but", "plus", "anyway", "ps"]}

    def __init__(self, config: Dict[Text, Any]) -> None:
        words = "|".join(re.escape(w) for w in config["part_breaks"])
        self._breaks = re.compile(rf"[.?!;\n]+|,|\b(?:{words})\b", re.IGNORECASE)
        self._detector = UrgencyDetector.from_yaml()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            detection = self._detector.detect(message.get(SPACY_DOCS[TEXT]) or text)
            message.set(DETECTION_KEY, detection)
            if detection is not None:
                self._hide_urgent_parts(message, text)
        return messages

    def _parts(self, text: Text) -> List[range]:
        bounds = [0] + [i for m in self._breaks.finditer(text) for i in m.span()] + [len(text)]
        return [range(a, b) for a, b in zip(bounds[::2], bounds[1::2]) if text[a:b].strip()]

    def _hide_urgent_parts(self, message: Message, text: Text) -> None:
        """Leaves the classifier only the tokens of the parts that are not urgent."""
        question = [p for p in self._parts(text) if self._detector.detect(text[p.start:p.stop]) is None]
        tokens = message.get(TOKENS_NAMES[TEXT]) or []
        kept = [t for t in tokens if any(t.start in part for part in question)]
        if kept and any(t.text.isalpha() for t in kept) and len(kept) < len(tokens):
            message.set(TOKENS_NAMES[TEXT], kept)
            message.set(QUESTION_ONLY_KEY, True)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class UrgencyEscalation(_UntrainedComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # The question part of a mixed message is answered when at least this likely.
            "question_threshold": 0.5,
            # Must match the FallbackClassifier threshold (tests/unit/test_config.py checks).
            "fallback_threshold": 0.35,
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        self._question_threshold = config["question_threshold"]
        self._fallback_threshold = config["fallback_threshold"]

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._process_one(message)
        return messages

    def _process_one(self, message: Message) -> None:
        detection: Optional[Detection] = message.get(DETECTION_KEY)
        intent = message.get(INTENT) or {}
        if detection is None:
            self._veto_unconfirmed_urgency(message)
            if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) != LEVEL_INTENTS["handoff"]:
                return
            detection = CLASSIFIER_HANDOFF
        question = None
        if message.get(QUESTION_ONLY_KEY) and intent.get(INTENT_NAME_KEY) not in NOT_A_QUESTION \
                and intent.get(PREDICTED_CONFIDENCE_KEY, 0.0) >= self._question_threshold:
            question = intent[INTENT_NAME_KEY]
        message.set(
            URGENCY_KEY,
            {"level": detection.level, "reason": detection.reason, "question_intent": question},
            add_to_output=True,
        )
        message.set(
            INTENT,
            {INTENT_NAME_KEY: LEVEL_INTENTS[detection.level], PREDICTED_CONFIDENCE_KEY: 1.0},
            add_to_output=True,
        )
        text = message.get(TEXT) or ""
        entities = [e for e in message.get(ENTITIES, []) if e.get("entity") != "urgency_reason"]
        entities.append({"entity": "urgency_reason", "value": detection.reason, "start": 0,
                         "end": len(text), "extractor": self.__class__.__name__})
        message.set(ENTITIES, entities, add_to_output=True)

    def _veto_unconfirmed_urgency(self, message: Message) -> None:
        """The classifier said emergency/urgent but the detector did not: use the next intent."""
        if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) not in DETECTOR_ONLY_INTENTS:
            return
        ranking = sorted(message.get(INTENT_RANKING_KEY) or [],
                         key=lambda r: -r.get(PREDICTED_CONFIDENCE_KEY, 0.0))
        for candidate in ranking:
            if candidate[INTENT_NAME_KEY] in DETECTOR_ONLY_INTENTS | {"nlu_fallback"}:
                continue
            if candidate[PREDICTED_CONFIDENCE_KEY] >= self._fallback_threshold:
                message.set(INTENT, dict(candidate), add_to_output=True)
                return
            break
        message.set(INTENT, {INTENT_NAME_KEY: "nlu_fallback", PREDICTED_CONFIDENCE_KEY: 1.0},
                    add_to_output=True)
