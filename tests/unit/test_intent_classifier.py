"""clinic_nlu.intent_classifier.IntentClassifier: Rasa's logistic regression, safe and faster."""
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic_nlu.intent_classifier import IntentClassifier

EXAMPLES = {
    "ask_refill": ["how often is the pump refilled", "when do i get a refill", "refill schedule"],
    "ask_trial": ["what is the trial", "how long does the trial last", "trial before the pump"],
    "greet": ["hello", "hi there", "good morning"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    context = ExecutionContext(GraphSchema({}), "test")
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    # words and character n-grams, as config.yml: the model sees their features side by side
    featurizers = [CountVectorsFeaturizer.create(
        {**CountVectorsFeaturizer.get_default_config(), **config}, storage, Resource(name), context)
        for name, config in (("words", {}),
                             ("chars", {"analyzer": "char_wb", "min_ngram": 2, "max_ngram": 4}))]
    data = TrainingData([Message.build(text, intent) for intent, texts in EXAMPLES.items()
                         for text in texts])
    tokenizer.process_training_data(data)
    for featurizer in featurizers:
        featurizer.train(data)
        featurizer.process_training_data(data)
    config = {**IntentClassifier.get_default_config(), "max_iter": 200}
    ours = IntentClassifier.create(config, storage, Resource("ours"), context)
    ours.train(data)
    rasas = LogisticRegressionClassifier.create(config, storage, Resource("rasas"), context)
    rasas.clf = ours.clf  # the same fitted model

    def featurized(text):
        message = Message.build(text)
        tokenizer.process([message])
        for featurizer in featurizers:
            featurizer.process([message])
        return message

    return ours, rasas, featurized


@pytest.mark.parametrize("text", ["how often is my pump refilled", "hello", "trial",
                                  "refill refill trial trial trial"])
def test_same_intent_and_ranking_as_rasas_classifier(trained, text):
    ours, rasas, featurized = trained
    got, expected = ours.process([featurized(text)])[0], rasas.process([featurized(text)])[0]
    assert got.get("intent")["name"] == expected.get("intent")["name"]
    assert got.get("intent")["confidence"] == pytest.approx(expected.get("intent")["confidence"])
    assert [(e["name"], pytest.approx(e["confidence"])) for e in got.get("intent_ranking")] == [
        (e["name"], e["confidence"]) for e in expected.get("intent_ranking")]


@pytest.mark.parametrize("text", ["", "🙂🙂", "zzzz qqqq"])
def test_a_message_it_recognises_nothing_in_gets_no_intent(trained, text):
    ours, _, featurized = trained
    message = ours.process([featurized(text)])[0]
    assert message.get("intent") == {"name": None, "confidence": 0.0}
    assert message.get("intent_ranking") == []
