"""clinic.rasa_speedups: action server responses are checked as strictly as Rasa checks them;
the runner without dask is put in place (its results: tests/unit/test_graph_runner.py)."""

import pytest
import rasa.core.processor
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.engine.runner.dask import DaskGraphRunner

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


def test_apply_replaces_rasas_check(monkeypatch):
    monkeypatch.setattr(RemoteAction, "_validate_action_result", ORIGINAL)
    monkeypatch.setattr(rasa.core.processor, "DaskGraphRunner", DaskGraphRunner)
    rasa_speedups.apply()
    assert RemoteAction._validate_action_result is rasa_speedups._validate_action_result


def test_the_rest_channel_applies_it(monkeypatch):
    from clinic.rest_channel import ClinicRestInput

    monkeypatch.setattr(RemoteAction, "_validate_action_result", ORIGINAL)
    monkeypatch.setattr(rasa.core.processor, "DaskGraphRunner", DaskGraphRunner)

    async def on_new_message(message):
        return None

    ClinicRestInput().blueprint(on_new_message)
    assert RemoteAction._validate_action_result is rasa_speedups._validate_action_result
    assert rasa.core.processor.DaskGraphRunner is SequentialGraphRunner
