"""Unit tests of the learned safety net of the urgency detector (clinic_nlu/urgency_safety_net.py)
and of how the detector consults it."""
import hashlib
import json
import shutil

import numpy as np
import pytest
import yaml

from clinic_nlu.urgency_detector import DEFAULT_PATTERNS, SAFETY_NET_REASON, UrgencyDetector
from clinic_nlu.urgency_safety_net import (SafetyNet, SafetyNetSettings, load_labelled,
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
    return SafetyNet.fit(texts, cues, levels, SafetyNetSettings(0.6, 16, cue_weight))


def test_hand_computed_probabilities_equal_sklearns(detector, examples):
    """The fast prediction path gives sklearn's predict_proba, on every tuning message."""
    net = detector._safety_net
    texts = [row["text"] for row in examples] + ["", "!!!", "😀 " * 50, "PUMP BEEPIIIING"]
    cues = [detector.scope_cues(text) for text in texts]
    expected = net.sklearn_probability(texts, cues)
    got = np.array([[net.escalation_probability(t, c)[level] for level in ("emergency", "urgent")]
                    for t, c in zip(texts, cues)])
    assert np.allclose(got, expected, atol=1e-9)


def test_the_net_only_adds_escalations(detector, rules_only, examples):
    """Whatever the rules detect stays exactly as it is; the net only fills in their silence."""
    added = 0
    for row in examples:
        rules = rules_only.detect(row["text"])
        combined = detector.detect(row["text"])
        if rules is not None:
            assert combined == rules, row["text"]
        elif combined is not None:
            assert combined.reason == SAFETY_NET_REASON
            added += 1
    assert added < len(examples)   # it does not escalate everything the rules leave alone


def test_a_wording_the_rules_do_not_know_is_escalated(nlp, tmp_path):
    patterns = tmp_path / DEFAULT_PATTERNS.name
    shutil.copy(DEFAULT_PATTERNS, patterns)
    rows = [{"text": t, "level": "urgent", "kind": "positive"} for t in
            ["i am glorbing", "glorbing badly since the refill", "my wife keeps glorbing",
             "he started glorbing an hour ago", "glorbing all night, what do i do"]]
    rows += [{"text": t, "level": "emergency", "kind": "positive"} for t in
             ["she is blorping and wont wake up", "he is blorping"]]
    rows += [{"text": t, "level": "none", "kind": "benign"} for t in
             ["how long is the trial", "thanks", "where is the clinic", "is anesthesia used",
              "what is the recovery like", "how often is the refill", "hi", "who can get a pump"]]
    (tmp_path / "urgency_examples.yml").write_text(yaml.safe_dump(rows), encoding="utf-8")
    toy = UrgencyDetector.from_yaml(patterns, nlp=nlp)
    rules = UrgencyDetector.from_yaml(patterns, nlp=nlp, safety_net=False)
    assert rules.detect("dad is glorbing again") is None
    found = toy.detect("dad is glorbing again")
    assert found is not None and (found.level, found.reason) == ("urgent", SAFETY_NET_REASON)
    assert toy.detect("how long is the trial?") is None


def test_a_sign_the_rules_saw_and_put_out_of_scope_is_their_call(detector):
    """The net is not asked when the rules saw a sign, even if it would escalate."""
    text = "my pump isn't beeping"
    net = detector._safety_net
    p = net.escalation_probability(text, detector.scope_cues(text))
    assert p["emergency"] + p["urgent"] >= net._settings.threshold   # alone it would escalate
    assert detector.detect(text) is None


def test_judge_escalates_only_when_sure_enough():
    net = _toy_net()
    assert net.judge("my pump is glorbing", frozenset()) == "urgent"
    assert net.judge("my dad is blorping", frozenset()) == "emergency"
    assert net.judge("how long is the trial", frozenset({"general"})) is None


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


@pytest.mark.parametrize("config", [
    {"threshold": 0, "c": 1, "cue_weight": 0.5},
    {"threshold": 1.0, "c": 1, "cue_weight": 0.5},
    {"threshold": 0.5, "c": 0, "cue_weight": 0.5},
    {"threshold": 0.5, "c": 1, "cue_weight": -1},
])
def test_bad_settings_are_refused(config):
    with pytest.raises(ValueError):
        SafetyNetSettings.from_config(config)


def test_a_table_without_every_level_is_refused():
    with pytest.raises(ValueError, match="every level"):
        SafetyNet.fit(["glorbing", "thanks"], [frozenset(), frozenset()], ["urgent", "none"],
                      SafetyNetSettings(0.6, 16, 0.5))


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
