"""Rasa's RulePolicy with the same predictions, skipping work that cannot change them.

Why: for every prediction (two or three per message) RulePolicy turns the WHOLE conversation
into one state per turn, walks all of them against every rule, and does it twice after a user
message (once with the message's text instead of its intent, for end-to-end rules). That made
prediction the largest part of the Rasa server's time per message, growing with the length of
the conversation (bench/README.md, "Profiling").

Three shortcuts, used when predicting (training is Rasa's, unchanged):
- Last turns only. A rule of n states is checked against the conversation's last n states only
  (RulePolicy._is_rule_applicable is True for any earlier turn), so the last `longest rule`
  states give every rule exactly the checks it gets from the whole conversation. Only those
  states are built; the events are still replayed from the start, so slots set long ago count,
  but each tracker's replay is kept, so a prediction replays only the events added since the
  last one.
- No text pass when no rule can match it. With the text instead of the intent in the last state,
  a rule whose last state asks for an intent cannot match; when every rule does (ours are all
  written with intents, none with text), that pass cannot predict anything, and it is skipped.
- Rules indexed by their last state. RulePolicy checks every rule against the last state; a rule
  whose last state names a previous action or an intent can only match a state with the same
  one, so only the rules indexed under the state's own action and intent (or naming none) are
  checked, by Rasa's own code.
tests/unit/test_rule_policy.py compares this policy's predictions with RulePolicy's.
"""
import weakref
from collections import defaultdict, deque
from typing import Any, Deque, Dict, List, Optional, Set, Text, Tuple

from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET, USER
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import ActionExecuted, Event
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ACTION_NAME, INTENT


class _Replay:
    """A tracker's applied events replayed so far, and the states before its last actions."""

    def __init__(self, tracker: DialogueStateTracker, turns: int) -> None:
        self.prior = tracker.init_copy()
        self.applied: List[Event] = []
        self.before_actions: Deque[State] = deque(maxlen=max(turns - 1, 0))


# Replays by id() of a live tracker (trackers are unhashable); dropped when the tracker is.
_REPLAYS: Dict[int, _Replay] = {}


def _replay_for(tracker: DialogueStateTracker, applied: List[Event], turns: int) -> _Replay:
    """The tracker's replay if its events are still the start of `applied`, else a new one."""
    replay = _REPLAYS.get(id(tracker))
    if (replay is not None and replay.before_actions.maxlen == max(turns - 1, 0)
            and len(replay.applied) <= len(applied)
            and all(old is new for old, new in zip(replay.applied, applied))):
        return replay
    if replay is None:
        weakref.finalize(tracker, _REPLAYS.pop, id(tracker), None)
    replay = _REPLAYS[id(tracker)] = _Replay(tracker, turns)
    return replay


def recent_states(tracker: DialogueStateTracker, domain: Domain, turns: int) -> List[State]:
    """The last `turns` states of `tracker.past_states(domain)`, building only those.

    As tracker.generate_all_prior_trackers: a state before each action and one at the end,
    from the events replayed from the start (slots set long ago count). The replay is kept
    for the tracker, so the next prediction on it (the same message's next, or the next
    message's: the tracker cache hands back the same tracker) replays only the new events;
    a conversation rewound or restarted is replayed again from its start."""
    applied = tracker.applied_events()
    replay = _replay_for(tracker, applied, turns)
    for event in applied[len(replay.applied):]:
        if isinstance(event, ActionExecuted):
            replay.before_actions.append(domain._clean_state(domain.get_active_state(replay.prior)))
        replay.prior.update(event)
        replay.applied.append(event)
    states = list(replay.before_actions)
    states.append(domain._clean_state(domain.get_active_state(replay.prior)))
    # copies: the featurizer edits the states it is given (they are built anew in Rasa)
    return [{key: dict(sub_state) for key, sub_state in state.items()} for state in states]


class _LastStateIndex:
    """A lookup's rule keys by the previous action and the intent of their rule's last state."""

    _FIELDS = ((PREVIOUS_ACTION, ACTION_NAME), (USER, INTENT))

    def __init__(self, lookup: Dict[Text, Text]) -> None:
        self.lookup = lookup
        self._by_value: List[Dict[Text, Set[Text]]] = [defaultdict(set) for _ in self._FIELDS]
        self._any: List[Set[Text]] = [set() for _ in self._FIELDS]
        for key in lookup:
            states = RulePolicy._rule_key_to_state(key)
            last = states[-1] if states else {}
            for n, (sub_state, name) in enumerate(self._FIELDS):
                value = last.get(sub_state, {}).get(name) if last.get(PREVIOUS_ACTION) else None
                # as RulePolicy._does_rule_match_state: only a set value must be equal
                if value and value != SHOULD_NOT_BE_SET:
                    self._by_value[n][value].add(key)
                else:
                    self._any[n].add(key)

    def candidates(self, state: State) -> Set[Text]:
        """The keys whose rule can match `state` as the last state."""
        if not state.get(PREVIOUS_ACTION):   # a conversation start: Rasa's own rules apply
            return set(self.lookup)
        found = None
        for n, (sub_state, name) in enumerate(self._FIELDS):
            value = state.get(sub_state, {}).get(name)
            keys = self._any[n] | self._by_value[n].get(value, set())
            found = keys if found is None else found & keys
        return found


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class FastRulePolicy(RulePolicy):
    _training = False
    _learnt: Optional[Tuple[int, bool]] = None
    _indexes: Optional[List[_LastStateIndex]] = None

    # Rasa's graph passes training inputs by the names in this signature: keep them.
    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain,
              **kwargs: Any) -> Resource:
        self._training = True
        try:
            return super().train(training_trackers, domain, **kwargs)
        finally:
            self._training = False

    def _learnt_rules(self) -> Optional[Tuple[int, bool]]:
        """(states of the longest rule, whether a rule could match a text state), or None while
        training or before any rule is learnt: then Rasa's own way."""
        if self._training:
            return None
        if self._learnt is None:
            rules = [self._rule_key_to_state(key)
                     for lookup in (RULES, RULES_FOR_LOOP_UNHAPPY_PATH)
                     for key in self.lookup.get(lookup, {})]
            if not rules:
                return None
            self._learnt = (max(len(states) for states in rules),
                            any(INTENT not in states[-1].get(USER, {}) for states in rules))
        return self._learnt

    def _find_action_from_rules(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        use_text_for_last_user_input: bool,
    ) -> Tuple[Optional[Text], Optional[Text], bool]:
        learnt = self._learnt_rules()
        if (use_text_for_last_user_input and learnt is not None and not learnt[1]
                and tracker.active_loop_name is None):
            return None, None, False
        return super()._find_action_from_rules(tracker, domain, use_text_for_last_user_input)

    def _get_possible_keys(self, lookup: Dict[Text, Text], states: List[State]) -> Set[Text]:
        if self._learnt_rules() is None or not states:
            return super()._get_possible_keys(lookup, states)
        if self._indexes is None:
            self._indexes = []
        index = next((i for i in self._indexes if i.lookup is lookup), None)
        if index is None:
            index = _LastStateIndex(lookup)
            self._indexes.append(index)
        candidates = index.candidates(states[-1])
        return super()._get_possible_keys({key: lookup[key] for key in candidates}, states)

    def _prediction_states(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        use_text_for_last_user_input: bool = False,
        rule_only_data: Optional[Dict[Text, Any]] = None,
    ) -> List[State]:
        learnt = self._learnt_rules()
        if learnt is None:
            return super()._prediction_states(
                tracker, domain, use_text_for_last_user_input, rule_only_data)
        states = recent_states(tracker, domain, learnt[0])
        # as the featurizer does for the whole conversation (RulePolicy has no max_history)
        self.featurizer._choose_last_user_input([states], use_text_for_last_user_input)
        return states
