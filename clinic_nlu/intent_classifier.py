"""Rasa's LogisticRegressionClassifier, made safe for messages it recognises nothing in.

The stock classifier crashes on a message with no features at all (an empty one: "Found array
with 0 feature(s)") and gives a message whose words it has never seen (emoji, "...", control
characters) its class prior, a confident-looking guess such as `greet` at 0.32. Here such a
message gets no intent at confidence 0, so the FallbackClassifier answers it honestly.

It also reads a message's sentence features where the featurizers left them: Rasa combines
all of its features (the per-token ones too, which this model does not use) three times per
message. The pipeline has sparse features only (config.yml), so the sentence features side by
side, in the featurizers' order, are exactly the row the model was trained on. And it computes
the multinomial model's probabilities itself: sklearn's predict_proba checks its input on every
call, which took most of the remaining time (a unit test compares all this with Rasa's).
"""
from typing import List

import numpy as np
from scipy.sparse import hstack, spmatrix

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, INTENT_NAME_KEY
from rasa.shared.nlu.constants import INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.constants import PREDICTED_CONFIDENCE_KEY
from rasa.utils.tensorflow.constants import RANKING_LENGTH
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class IntentClassifier(LogisticRegressionClassifier):
    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            blocks = [f.features for f in message.features if f.attribute == TEXT
                      and f.is_sparse() and f.type == FEATURE_TYPE_SENTENCE]
            if not any(block.nnz for block in blocks):  # nothing it knows
                message.set(INTENT, {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0},
                            add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
                continue
            probabilities = self.probabilities(blocks)
            ranking = sorted(({INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: float(p)}
                              for name, p in zip(self.clf.classes_, probabilities)),
                             key=lambda entry: -entry[PREDICTED_CONFIDENCE_KEY])
            message.set(INTENT, ranking[0], add_to_output=True)
            if self.config[RANKING_LENGTH] > 0:
                ranking = ranking[: self.config[RANKING_LENGTH]]
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def probabilities(self, blocks: List[spmatrix]) -> np.ndarray:
        """sklearn's predict_proba of the one-row blocks side by side."""
        if self.clf.coef_.shape[0] == 1:   # two intents: a binary model, rare enough to leave
            return self.clf.predict_proba(hstack(blocks).tocsr())[0]
        logits = self.clf.intercept_.copy()
        offset = 0
        for block in blocks:
            row = block.tocoo()
            logits += self.clf.coef_[:, offset + row.col] @ row.data
            offset += block.shape[1]
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()
