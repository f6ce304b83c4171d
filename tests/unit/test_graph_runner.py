"""clinic.graph_runner.SequentialGraphRunner gives DaskGraphRunner's results.

Runs the trained model (`make train` first; `make test` trains before the unit tests): every
held-out NLU message through the NLU graph, and the policies on a conversation, with both
runners on the same instantiated nodes.
"""
import asyncio
import copy

import pytest
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

from clinic.graph_runner import SequentialGraphRunner
from tests.unit.conftest import MODEL, heldout_messages


@pytest.fixture(scope="module")
def runners():
    assert MODEL.exists(), "no trained model: run `make train`"
    agent = Agent.load(str(MODEL))
    dask_runner = copy.copy(agent.processor.graph_runner)   # the same instantiated nodes
    dask_runner.__class__ = DaskGraphRunner
    sequential = copy.copy(dask_runner)
    sequential.__class__ = SequentialGraphRunner
    return agent, dask_runner, sequential


def test_same_parse_results(runners):
    agent, dask_runner, sequential = runners
    targets = [agent.processor.model_metadata.nlu_target]
    for text in heldout_messages() + ["", "🙂", "x" * 3000]:
        def inputs():   # the same message id; a spaCy Doc compares by identity: its text
            return {PLACEHOLDER_MESSAGE: [UserMessage(text, message_id="m")],
                    PLACEHOLDER_TRACKER: None}

        def comparable(message):
            data = message.as_dict()
            data["text_spacy_doc"] = str(data.get("text_spacy_doc"))
            return data

        got, expected = sequential.run(inputs(), targets), dask_runner.run(inputs(), targets)
        assert got.keys() == expected.keys()
        (parsed,), (wanted,) = got[targets[0]], expected[targets[0]]
        assert comparable(parsed) == comparable(wanted), text


def test_same_predictions_along_a_conversation(runners):
    agent, dask_runner, sequential = runners
    target = [agent.processor.model_metadata.core_target]
    messages = [m for m in heldout_messages() if m][:40]

    async def talk():
        for text in messages:
            await agent.handle_message(UserMessage(text, CollectingOutputChannel(), "runner-test"))
            tracker = await agent.tracker_store.retrieve("runner-test")
            got = sequential.run({PLACEHOLDER_TRACKER: tracker.copy()}, target)[target[0]]
            expected = dask_runner.run({PLACEHOLDER_TRACKER: tracker.copy()}, target)[target[0]]
            assert got.max_confidence_index == expected.max_confidence_index
            assert got.policy_name == expected.policy_name
            assert got.probabilities == expected.probabilities

    asyncio.run(talk())


def test_an_input_named_like_a_node_is_refused(runners):
    _, _, sequential = runners
    node = next(iter(sequential._graph_schema.nodes))
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        sequential.run({PLACEHOLDER_MESSAGE: node})

