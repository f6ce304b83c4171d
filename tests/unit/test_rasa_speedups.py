"""clinic.rasa_speedups: action server responses are checked as strictly as Rasa checks them;
trackers are copied into the state Rasa's replay gives; the runner without dask is put in place
(its results: tests/unit/test_graph_runner.py)."""

import pytest
import rasa.core.processor
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.events import ActiveLoop, LoopInterrupted, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

from clinic import rasa_speedups
from clinic.graph_runner import SequentialGraphRunner

ORIGINAL = RemoteAction._validate_action_result
ACTION = RemoteAction("action_escalate", None)

VALID = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "topic", "value": "refill", "timestamp": None}],
     "responses": [{"response": "utter_refill"}]},
    {},
]
INVALID = [
    {"events": "not a list"},
    {"events": [{"event": "slot", "name": 3}]},
    {"events": [{"event": "no_such_event"}]},
    {"responses": [1, 2]},
    [],
]


def checked_by(validate, result):
    try:
        return validate(ACTION, result)
    except ValidationError as error:
        return error.message


@pytest.mark.parametrize("result", VALID + INVALID)
def test_same_verdict_and_message_as_rasas_check(result):
    assert checked_by(rasa_speedups._validate_action_result, result) == checked_by(ORIGINAL, result)


@pytest.mark.parametrize("result", INVALID)
def test_invalid_responses_are_rejected(result):
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        rasa_speedups._validate_action_result(ACTION, result)


def state(tracker):
    """Everything a tracker holds, slots by their type, value and whether they were set."""
    held = {name: value for name, value in vars(tracker).items() if name not in ("events", "slots")}
    held["events"] = list(tracker.events)
    held["slots"] = {name: (type(slot), slot.value, slot.has_been_set)
                     for name, slot in tracker.slots.items()}
    return held


def replayed(tracker):
    return tracker.travel_back_in_time(float("inf"))  # what Rasa's copy() does


def test_a_copy_holds_what_rasas_replay_gives(conversations):
    _, _, trackers = conversations
    checked = 0
    for tracker in trackers:
        events = list(tracker.events)
        for end in range(len(events) + 1):
            point = DialogueStateTracker.from_events(tracker.sender_id, events[:end],
                                                     slots=tracker.slots.values())
            assert state(rasa_speedups._copy_tracker(point)) == state(replayed(point))
            checked += 1
    # with loops (no form in our domain) and a restart too
    point.update(ActiveLoop("some_form"))
    point.update(LoopInterrupted(True))
    assert state(rasa_speedups._copy_tracker(point)) == state(replayed(point))
    assert checked > 300


def test_a_copy_changes_apart_from_its_original(conversations):
    _, _, trackers = conversations
    original = trackers[-1]
    original.update(ActiveLoop("some_form"))
    before = state(original)
    copied = rasa_speedups._copy_tracker(original)
    copied.update(SlotSet("topic", "something else"))
    copied.update(LoopInterrupted(True))
    copied.update(ActiveLoop(None))
    assert state(original) == before
    assert state(copied) != before


def test_apply_replaces_rasas_check_and_copy(monkeypatch):
    monkeypatch.setattr(RemoteAction, "_validate_action_result", ORIGINAL)
    monkeypatch.setattr(rasa.core.processor, "DaskGraphRunner", DaskGraphRunner)
    monkeypatch.setattr(DialogueStateTracker, "copy", DialogueStateTracker.copy)
    rasa_speedups.apply()
    assert RemoteAction._validate_action_result is rasa_speedups._validate_action_result
    assert DialogueStateTracker.copy is rasa_speedups._copy_tracker


def test_the_rest_channel_applies_it(monkeypatch):
    from clinic.rest_channel import ClinicRestInput

    monkeypatch.setattr(RemoteAction, "_validate_action_result", ORIGINAL)
    monkeypatch.setattr(rasa.core.processor, "DaskGraphRunner", DaskGraphRunner)

    async def on_new_message(message):
        return None

    ClinicRestInput().blueprint(on_new_message)
    assert RemoteAction._validate_action_result is rasa_speedups._validate_action_result
    assert rasa.core.processor.DaskGraphRunner is SequentialGraphRunner
