"""Fixes for slow spots of Rasa 3.6 (pinned in requirements.txt), applied by our REST channel.

- The trained model's graph runs without dask (clinic/graph_runner.py).
- Rasa checks every response of the action server with `jsonschema.validate`, which first
  checks the (large, constant) schema itself against JSON Schema's meta-schema: about 20 ms of
  the Rasa server's time for each custom action call, i.e. for every urgent message, and more
  than the rest of such a message's handling (bench/README.md, "Profiling"). Here the schema is
  checked once, and each response is checked against it exactly as `jsonschema.validate` does
  (same errors, same message added by Rasa).
- Before running each action (two or three per message) Rasa copies the conversation's tracker
  with `tracker.copy()`, which replays every event of the conversation into a new tracker: the
  longer the conversation, the slower every action. Here the copy takes the tracker's current
  state instead (the state a replay rebuilds: Rasa keeps it re-creatable from the events).
"""
import copy
from typing import Any, Dict, Text

import rasa.core.processor
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.graph_runner import SequentialGraphRunner

_SCHEMA = RemoteAction.action_response_format_spec()
_VALIDATOR_CLASS = validator_for(_SCHEMA)
_VALIDATOR_CLASS.check_schema(_SCHEMA)  # once, at import
_VALIDATOR = _VALIDATOR_CLASS(_SCHEMA)


def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    error = best_match(_VALIDATOR.iter_errors(result))
    if error is not None:
        # Rasa's wording (rasa/core/actions/action.py, RemoteAction._validate_action_result)
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit {DOCS_BASE_URL}/custom-actions")
        raise error
    return True


def _copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
    """DialogueStateTracker.copy (a replay of all events into `init_copy()`), from the state."""
    new = self.init_copy()
    new.events.extend(self.events)
    new.slots = {name: copy.copy(slot) for name, slot in self.slots.items()}
    new._paused = self._paused
    new.followup_action = self.followup_action
    # events mostly replace these, but some change the active loop in place (LoopInterrupted)
    new.latest_action = None if self.latest_action is None else dict(self.latest_action)
    new.active_loop = copy.copy(self.active_loop)
    new.latest_message = self.latest_message
    new.latest_bot_utterance = self.latest_bot_utterance
    return new


def apply() -> None:
    """Makes Rasa validate action server responses with the checked-once schema, copy trackers
    from their state, and load models (MessageProcessor) with the runner without dask."""
    RemoteAction._validate_action_result = _validate_action_result
    DialogueStateTracker.copy = _copy_tracker
    rasa.core.processor.DaskGraphRunner = SequentialGraphRunner

