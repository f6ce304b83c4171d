"""Unit tests of the learned safety net of the urgency detector (clinic_nlu/urgency_safety_net.py)
and of how the detector consults it."""
import hashlib
import json
import shutil

import numpy as np
import pytest
import yaml

from clinic_nlu.urgency_detector import (DEFAULT_PATTERNS, SAFETY_NET_REASON, Detection,
                                         UrgencyDetector)
from clinic_nlu.urgency_safety_net import (SafetyNet, SafetyNetSettings, decide, load_labelled,
                                          load_nlu_examples)



@pytest.fixture(scope="module")
def rules_only(nlp):
    return UrgencyDetector.from_yaml(DEFAULT_PATTERNS, nlp=nlp, safety_net=False)


@pytest.fixture(scope="module")
def examples(eval_urgency):
    return load_labelled(eval_urgency.TUNING)


def _toy_net(cue_weight=0.5):
    texts = ["my pump is glorbing", "the pump keeps glorbing at me", "glorbing since the refill",
             "what is glorbing", "can a pump glorb", "how long is the trial", "thanks",
             "where is the clinic", "he is blorping and wont wake up", "she is blorping"]
    levels = ["urgent", "urgent", "urgent", "none", "none", "none", "none", "none", "emergency",
              "emergency"]
    cues = [frozenset(), frozenset(), frozenset(), frozenset({"general"}), frozenset({"general"}),
            frozenset({"general"}), frozenset(), frozenset(), frozenset(), frozenset()]
    return SafetyNet.fit(texts, cues, levels, SafetyNetSettings(0.6, 0.8, 0.95, 0.7, 16, cue_weight))


def test_hand_computed_probabilities_equal_sklearns(detector, examples):
    """The fast prediction path gives sklearn's predict_proba, on every tuning message."""
    net = detector._safety_net
    texts = [row["text"] for row in examples] + ["", "!!!", "😀 " * 50, "PUMP BEEPIIIING"]
    cues = [detector.scope_cues(text) for text in texts]
    expected = net.sklearn_probability(texts, cues)
    got = np.array([[net.escalation_probability(t, c)[level] for level in ("emergency", "urgent")]
                    for t, c in zip(texts, cues)])
    assert np.allclose(got, expected, atol=1e-9)


def test_the_net_only_raises_what_the_rules_found(detector, rules_only, examples):
    """The net never lowers or removes a detection of the rules: it adds one where they found
    none (or a handoff), or makes their urgent detection an emergency."""
    rank = {None: -1, "handoff": 0, "urgent": 1, "emergency": 2}
    raised = 0
    for row in examples + [{"text": "can hardly breathe"}, {"text": "my pump isn't beeping"}]:
        rules = rules_only.detect(row["text"])
        combined = detector.detect(row["text"])
        if combined != rules:
            assert combined.reason == SAFETY_NET_REASON, row["text"]
            assert rank[combined.level] > rank[rules.level if rules else None], row["text"]
            raised += 1
    assert raised < len(examples)   # it does not escalate everything


@pytest.fixture(scope="module")
def toy(nlp, tmp_path_factory):
    """Today's rules with a net trained on a few rows of made-up signs ("glorbing": urgent,
    "blorping": emergency)."""
    folder = tmp_path_factory.mktemp("toy")
    patterns = folder / DEFAULT_PATTERNS.name
    shutil.copy(DEFAULT_PATTERNS, patterns)
    rows = [{"text": t, "level": "urgent", "kind": "positive"} for t in
            ["i am glorbing", "glorbing badly since the refill", "my wife keeps glorbing",
             "he started glorbing an hour ago", "glorbing all night, what do i do"]]
    rows += [{"text": t, "level": "emergency", "kind": "positive"} for t in
             ["she is blorping and wont wake up", "he is blorping", "blorping since the refill",
              "my dad is blorping badly", "blorping, please help", "he is really sleepy and limp",
              "she is so sleepy and limp", "really sleepy and limp, please help"]]
    rows += [{"text": t, "level": "none", "kind": "benign"} for t in
             ["how long is the trial", "thanks", "where is the clinic", "is anesthesia used",
              "what is the recovery like", "how often is the refill", "hi", "who can get a pump"]]
    (folder / "urgency_examples.yml").write_text(yaml.safe_dump(rows), encoding="utf-8")
    return UrgencyDetector.from_yaml(patterns, nlp=nlp)


def test_a_wording_the_rules_do_not_know_is_escalated(toy, rules_only):
    assert rules_only.detect("dad is glorbing again") is None
    found = toy.detect("dad is glorbing again")
    assert found is not None and (found.level, found.reason) == ("urgent", SAFETY_NET_REASON)
    assert toy.detect("how long is the trial?") is None


def test_an_urgent_detection_can_become_an_emergency(toy, rules_only):
    """Only where the rules saw an emergency sign ("sleepy") they could not complete."""
    text = "the pump alarm is going off and he is really sleepy"
    assert rules_only.detect(text).level == "urgent"
    found = toy.detect(text)
    assert (found.level, found.reason) == ("emergency", SAFETY_NET_REASON)
    p = toy._safety_net.escalation_probability("my pump is beeping and my dad is blorping",
                                               toy.scope_cues("my pump is beeping and my dad is blorping"))
    assert p["emergency"] >= toy._safety_net.settings.upgrade   # the net alone would raise it
    assert toy.detect("my pump is beeping and my dad is blorping").level == "urgent"


def _escalating(detector, text):
    """P(emergency) + P(urgent) of the detector's safety net for the text."""
    p = detector._safety_net.escalation_probability(text, detector.scope_cues(text))
    return p["emergency"] + p["urgent"]


def _assert_the_net_decides(toy, rules_only, text, sign_status, threshold):
    """No rule fires; the rules read the text's signs as `sign_status`; the toy net, at least
    `threshold` sure, escalates it as an emergency."""
    assert rules_only.detect(text) is None
    assert toy.sign_status(text) == sign_status
    assert _escalating(toy, text) >= threshold
    assert toy.detect(text) == Detection("emergency", SAFETY_NET_REASON)


def test_a_negated_sign_is_the_rules_call(detector):
    """The net is not asked when every sign the rules saw is negated (or an animal's)."""
    text = "my pump isn't beeping"
    # where no sign matched, the net would escalate it
    assert _escalating(detector, text) >= detector._safety_net.settings.threshold
    assert detector.sign_status(text) == "denied"
    assert detector.detect(text) is None


def test_a_net_all_but_sure_overrules_a_sign_set_aside(toy, rules_only):
    """"dizzy" is told in the past, but the net is sure of an emergency it has learnt
    ("blorping"); negated, the same sign keeps the net out however sure it is."""
    _assert_the_net_decides(toy, rules_only, "i was dizzy last year, blorping blorping",
                            "set aside", toy._safety_net.settings.threshold_set_aside)
    negated = "not dizzy, blorping blorping"
    assert toy.sign_status(negated) == "denied"
    assert _escalating(toy, negated) >= toy._safety_net.settings.threshold_set_aside
    assert toy.detect(negated) is None


def test_a_sign_seen_but_no_rule_fired_asks_the_net(toy, rules_only):
    """"confused" is a sign, but no rule fires on it alone: the net decides, with
    threshold_after_sign."""
    _assert_the_net_decides(toy, rules_only, "she seems confused and is blorping", "seen",
                            toy._safety_net.settings.threshold_after_sign)


SETTINGS = SafetyNetSettings(threshold=0.6, threshold_after_sign=0.8, threshold_set_aside=0.95,
                             upgrade=0.7, c=16, cue_weight=0.5)


@pytest.mark.parametrize("p, rules_level, sign_status, expected", [
    ({"emergency": 0.1, "urgent": 0.6}, None, "no sign", "urgent"),
    ({"emergency": 0.1, "urgent": 0.6}, None, "seen", None),          # below threshold_after_sign
    ({"emergency": 0.1, "urgent": 0.75}, None, "seen", "urgent"),
    ({"emergency": 0.5, "urgent": 0.3}, None, "seen", "emergency"),
    ({"emergency": 0.1, "urgent": 0.8}, None, "set aside", None),     # below threshold_set_aside
    ({"emergency": 0.9, "urgent": 0.05}, None, "set aside", "emergency"),
    ({"emergency": 0.1, "urgent": 0.4}, None, "no sign", None),
    ({"emergency": 0.1, "urgent": 0.7}, "handoff", "no sign", "urgent"),  # a handoff that reports more
    ({"emergency": 0.69, "urgent": 0.3}, "urgent", "seen", None),      # below upgrade
    ({"emergency": 0.7, "urgent": 0.3}, "urgent", "seen", "emergency"),
    ({"emergency": 0.0, "urgent": 1.0}, "urgent", "seen", None),       # never more of the same
    ({"emergency": 0.0, "urgent": 1.0}, "emergency", "seen", None),    # never lower
])
def test_decide(p, rules_level, sign_status, expected):
    assert decide(p, rules_level, sign_status, SETTINGS) == expected


def test_the_toy_net_escalates_only_when_sure_enough():
    net = _toy_net()

    def level(text, cues=frozenset()):
        return decide(net.escalation_probability(text, cues), None, "no sign", net.settings)

    assert level("my pump is glorbing") == "urgent"
    assert level("my dad is blorping") == "emergency"
    assert level("how long is the trial", frozenset({"general"})) is None


def test_training_is_deterministic():
    a, b = _toy_net(), _toy_net()
    for text in ("glorbing now", "what is a pump", ""):
        assert a.escalation_probability(text, frozenset()) == b.escalation_probability(text, frozenset())


def test_scope_cues_are_features():
    """The same words weigh differently with a cue the net has learnt to discount."""
    net = _toy_net(cue_weight=2.0)
    plain = net.escalation_probability("glorbing", frozenset())
    general = net.escalation_probability("glorbing", frozenset({"general"}))
    assert general["urgent"] < plain["urgent"]


def test_the_net_never_learns_from_the_held_out_half(examples, eval_urgency):
    def norm(text):
        return " ".join(text.lower().split())

    held_out = {norm(row["text"]) for row in load_labelled(eval_urgency.HELDOUT)}
    shared = [row for row in examples if norm(row["text"]) in held_out]
    assert not shared, f"{len(shared)} held-out messages are in the examples"


GOOD = {"threshold": 0.6, "threshold_after_sign": 0.8, "threshold_set_aside": 0.95, "upgrade": 0.7,
        "c": 1, "cue_weight": 0.5}


@pytest.mark.parametrize("change", [
    {"threshold": 0}, {"threshold": 1.0}, {"threshold_after_sign": 1.2},
    {"threshold_set_aside": 1.0}, {"upgrade": 0},
    {"c": 0}, {"cue_weight": -1},
])
def test_bad_settings_are_refused(change):
    assert SafetyNetSettings.from_config(GOOD) == SafetyNetSettings(0.6, 0.8, 0.95, 0.7, 1, 0.5)
    with pytest.raises(ValueError):
        SafetyNetSettings.from_config({**GOOD, **change})


def test_a_table_without_every_level_is_refused():
    with pytest.raises(ValueError, match="every level"):
        SafetyNet.fit(["glorbing", "thanks"], [frozenset(), frozenset()], ["urgent", "none"],
                      SafetyNetSettings(0.6, 0.8, 0.95, 0.7, 16, 0.5))


def test_nlu_examples_are_labelled_by_their_intent(tmp_path):
    (tmp_path / "a.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: ask_trial\n  examples: |\n    - how long is the trial\n'
        '    - trial?\n- intent: report_urgent\n  examples: |\n    - my pump is beeping\n',
        encoding="utf-8")
    (tmp_path / "b.yml").write_text('version: "3.1"\nrules: []\n', encoding="utf-8")
    rows = load_nlu_examples(tmp_path, {"report_urgent": "urgent"})
    assert [(r["text"], r["level"]) for r in rows] == [
        ("how long is the trial", "none"), ("trial?", "none"), ("my pump is beeping", "urgent")]


@pytest.mark.parametrize("row", [{"text": "x", "level": "urgnet"}, {"level": "none"},
                                 {"text": 3, "level": "none"}])
def test_bad_labelled_rows_are_refused(tmp_path, row):
    path = tmp_path / "rows.yml"
    path.write_text(yaml.safe_dump([row]), encoding="utf-8")
    with pytest.raises(ValueError):
        load_labelled(path)


def test_the_tables_read_as_pyyaml_reads_them(eval_urgency):
    """load_labelled uses libyaml's parser (faster): the rows are those of yaml.safe_load."""
    def digest(rows):  # a failure must not print the held-out texts
        return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()

    for path in (eval_urgency.TUNING, eval_urgency.HELDOUT):
        with open(path, encoding="utf-8") as handle:
            assert digest(load_labelled(path)) == digest(yaml.safe_load(handle)), path.name
