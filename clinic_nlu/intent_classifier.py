"""Rasa's LogisticRegressionClassifier, made safe for messages it recognises nothing in.

The stock classifier crashes on a message with no features at all (an empty one: "Found array
with 0 feature(s)") and gives a message whose words it has never seen (emoji, "...", control
characters) its class prior, a confident-looking guess such as `greet` at 0.32. Here such a
message gets no intent at confidence 0, so the FallbackClassifier answers it honestly.
"""
from typing import List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.constants import PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message


def recognises_something(message: Message) -> bool:
    sentence_features = message.get_sparse_features(attribute=TEXT)[1]
    return sentence_features is not None and sentence_features.features.nnz > 0


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class IntentClassifier(LogisticRegressionClassifier):
    def process(self, messages: List[Message]) -> List[Message]:
        known = [m for m in messages if recognises_something(m)]
        if known:
            super().process(known)
        for message in messages:
            if not recognises_something(message):
                message.set(INTENT, {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0},
                            add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
        return messages
