"""Rasa's RulePolicy, predicting from the conversation's last turns instead of all of them.

Why: for every prediction (two or three per message) RulePolicy turns the WHOLE conversation
into one state per turn and then walks all of them against every rule, although no rule can
look further back than its own length. That made prediction the largest part of the Rasa
server's time per message, growing with the length of the conversation (bench/README.md).

Same predictions: a rule of n states is checked against the conversation's last n states only
(RulePolicy._is_rule_applicable is True for any earlier turn), so the last `longest rule`
states give every rule exactly the checks it gets from the whole conversation. Only those
states are built; the conversation's events are still replayed from the start, so slots set
long ago are in them. tests/unit/test_rule_policy.py compares both policies on conversations.
"""
from typing import Any, Dict, List, Optional, Text

from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker


def recent_states(tracker: DialogueStateTracker, domain: Domain, turns: int) -> List[State]:
    """The last `turns` states of `tracker.past_states(domain)`, building only those."""
    # As tracker.generate_all_prior_trackers: a state before each action and one at the end.
    applied = tracker.applied_events()
    skip = 1 + sum(isinstance(event, ActionExecuted) for event in applied) - turns
    prior = tracker.init_copy()
    states = []
    for event in applied:
        if isinstance(event, ActionExecuted):
            if skip > 0:
                skip -= 1
            else:
                states.append(domain._clean_state(domain.get_active_state(prior)))
        prior.update(event)
    states.append(domain._clean_state(domain.get_active_state(prior)))
    return states


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class RecentTurnsRulePolicy(RulePolicy):
    def _prediction_states(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        use_text_for_last_user_input: bool = False,
        rule_only_data: Optional[Dict[Text, Any]] = None,
    ) -> List[State]:
        rule_keys = [*self.lookup.get(RULES, {}), *self.lookup.get(RULES_FOR_LOOP_UNHAPPY_PATH, {})]
        if not rule_keys:  # while the rules themselves are being learnt
            return super()._prediction_states(
                tracker, domain, use_text_for_last_user_input, rule_only_data)
        longest = max(len(self._rule_key_to_state(key)) for key in rule_keys)
        states = recent_states(tracker, domain, longest)
        # as the featurizer does for the whole conversation (RulePolicy has no max_history)
        self.featurizer._choose_last_user_input([states], use_text_for_last_user_input)
        return states
