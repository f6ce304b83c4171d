"""clinic.rule_policy.FastRulePolicy predicts exactly what Rasa's RulePolicy predicts.

Runs the trained model (`make train` first; `make test` trains before the unit tests) through
conversations made of the held-out NLU messages, and at every point of each conversation where
a policy predicts, compares the two policies with the same learnt rules.
"""
import asyncio
import copy
import random
from pathlib import Path

import pytest
import yaml
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.events import ActionExecuted, Restarted, UserUttered, UserUtteranceReverted
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.rule_policy import FastRulePolicy, _LastStateIndex, recent_states

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "clinic.tar.gz"
# The urgent ones call the action server, which is not running here.
SKIP = {"report_emergency", "report_urgent", "request_human"}


def heldout_messages():
    data = yaml.safe_load((ROOT / "tests" / "nlu" / "heldout.yml").read_text(encoding="utf-8"))
    return [line.strip()[2:] for block in data["nlu"] if block["intent"] not in SKIP
            for line in block["examples"].splitlines() if line.strip().startswith("- ")]


@pytest.fixture(scope="module")
def conversations():
    assert MODEL.exists(), "no trained model: run `make train`"
    agent = Agent.load(str(MODEL))
    policy = next(node._component for node in agent.processor.graph_runner._instantiated_nodes.values()
                  if isinstance(node._component, FastRulePolicy))
    messages = heldout_messages()
    random.Random(7).shuffle(messages)

    async def talk():
        trackers = []
        for number in range(6):  # conversations of 5 to 30 messages
            sender = f"conversation-{number}"
            for text in messages[number * 30: number * 30 + 5 * (number + 1)]:
                await agent.handle_message(UserMessage(text, CollectingOutputChannel(), sender))
            trackers.append(await agent.tracker_store.retrieve(sender))
        return trackers

    return agent.domain, policy, asyncio.run(talk())


def prediction_points(tracker):
    """The tracker as it was at each point where a policy predicted the next action."""
    events = list(tracker.events)
    for end in range(1, len(events) + 1):
        if isinstance(events[end - 1], (UserUttered, ActionExecuted)):
            yield DialogueStateTracker.from_events(tracker.sender_id, events[:end],
                                                   slots=tracker.slots.values())


def test_the_last_states_are_the_whole_conversations_last_states(conversations):
    domain, _, trackers = conversations
    for tracker in trackers:
        full = tracker.past_states(domain)
        for turns in (1, 3, 5, len(full), len(full) + 4):
            assert recent_states(tracker, domain, turns) == full[-turns:]


def test_the_last_states_stay_right_as_a_tracker_grows_rewinds_and_restarts(conversations):
    """recent_states keeps its replay of a tracker between calls (the same tracker object
    is predicted on again and again): check it against Rasa's full replay at every event."""
    domain, _, trackers = conversations
    for tracker in trackers[:3]:
        growing = DialogueStateTracker.from_events(tracker.sender_id, [],
                                                   slots=tracker.slots.values())
        events = list(tracker.events)
        half = len(events) // 2
        rewound = events[:half] + [UserUtteranceReverted()] + events[half:]
        for event in rewound + [Restarted()] + events[:half]:
            growing.update(event)
            assert recent_states(growing, domain, 3) == growing.past_states(domain)[-3:]


def test_same_predictions_as_rasas_rule_policy(conversations):
    domain, ours, trackers = conversations
    rasas = copy.copy(ours)
    rasas.__class__ = RulePolicy  # the same learnt rules, Rasa's own prediction
    points = 0
    for tracker in trackers:
        for point in prediction_points(tracker):
            expected = rasas.predict_action_probabilities(point, domain)
            got = ours.predict_action_probabilities(point, domain)
            assert got.probabilities == expected.probabilities
            assert got.is_end_to_end_prediction == expected.is_end_to_end_prediction
            assert got.events == expected.events
            points += 1
    assert points > 200
    assert max(len(t.past_states(domain)) for t in trackers) > 50  # long enough to matter


def test_indexed_rules_give_rasas_possible_keys(conversations):
    """At every prediction point, from every number of last states, the same rules remain."""
    domain, ours, trackers = conversations
    rasas = copy.copy(ours)
    rasas.__class__ = RulePolicy
    lookup = ours.lookup["rules"]
    checked = 0
    for tracker in trackers:
        for point in prediction_points(tracker):
            states = point.past_states(domain)
            for turns in (1, 2, 4):
                expected = rasas._get_possible_keys(lookup, states[-turns:])
                assert ours._get_possible_keys(lookup, states[-turns:]) == expected
                checked += bool(expected)
    assert checked > 100


def test_the_shortcuts_apply_to_our_rules(conversations):
    _, ours, trackers = conversations
    longest, text_can_match = ours._learnt_rules()
    assert not text_can_match  # every rule is written with intents: no text pass needed
    # the conversations above are much longer than any rule
    assert 1 < longest < min(len(t.events) for t in trackers) // 4
    # after a user message, few of the rules are left to check
    lookup = ours.lookup["rules"]
    index = _LastStateIndex(lookup)
    domain = conversations[0]
    for tracker in trackers:
        last_user = next(p for p in reversed(list(prediction_points(tracker)))
                         if isinstance(p.events[-1], UserUttered))
        assert len(index.candidates(last_user.past_states(domain)[-1])) < len(lookup) / 4
