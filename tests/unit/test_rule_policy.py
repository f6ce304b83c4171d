"""clinic.rule_policy.FastRulePolicy predicts exactly what Rasa's RulePolicy predicts.

At every point of real conversations (the `conversations` fixture, tests/unit/conftest.py)
where a policy predicts, compares the two policies with the same learnt rules.
"""
import copy

from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.events import ActionExecuted, Restarted, UserUttered, UserUtteranceReverted
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.rule_policy import _LastStateIndex, recent_states


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
