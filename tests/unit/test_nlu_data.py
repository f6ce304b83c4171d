"""Checks on the NLU training data (data/nlu/) and the held-out test set (tests/nlu/heldout.yml).

Uses PyYAML only, so it runs without Rasa:
- every topic intent has enough training examples,
- every intent declared in domain/*.yml has enough held-out examples,
- no held-out example (normalized) also appears in the training data,
- no training example is used for two different intents.
"""
import re
import string
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NLU_DIR = ROOT / "data" / "nlu"
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
DOMAIN_DIR = ROOT / "domain"
TOPICS_DOMAIN = DOMAIN_DIR / "topics.yml"

MIN_TRAIN_PER_TOPIC = 25
MIN_HELDOUT_PER_INTENT = 5

_PUNCT = re.compile("[" + re.escape(string.punctuation) + "\u2018\u2019\u201c\u201d]")


def normalize(text: str) -> str:
    """Lower case, punctuation stripped, whitespace collapsed."""
    return " ".join(_PUNCT.sub("", text.lower()).split())


def _examples(block: str) -> list:
    out = []
    for line in (block or "").splitlines():
        line = line.strip()
        if line.startswith("- "):
            out.append(line[2:].strip())
    return out


def load_nlu(paths) -> dict:
    """intent name -> list of example strings, over all the given NLU files."""
    data = defaultdict(list)
    for path in paths:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for item in doc.get("nlu") or []:
            if "intent" in item:
                data[item["intent"]].extend(_examples(item.get("examples", "")))
    return dict(data)


def domain_intents(paths) -> list:
    intents = []
    for path in paths:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for entry in doc.get("intents") or []:
            intents.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return intents


TRAIN_FILES = sorted(NLU_DIR.glob("*.yml"))
TRAIN = load_nlu(TRAIN_FILES)
HELD = load_nlu([HELDOUT])
TOPIC_INTENTS = domain_intents([TOPICS_DOMAIN])
ALL_INTENTS = domain_intents(sorted(DOMAIN_DIR.glob("*.yml")))


def test_files_exist():
    assert TRAIN_FILES, "no training files in data/nlu/"
    assert HELDOUT.exists()
    assert len(TOPIC_INTENTS) == 19


@pytest.mark.parametrize("intent", TOPIC_INTENTS)
def test_topic_intent_has_enough_training_examples(intent):
    n = len(TRAIN.get(intent, []))
    assert n >= MIN_TRAIN_PER_TOPIC, f"{intent}: {n} training examples"


@pytest.mark.parametrize("intent", ALL_INTENTS)
def test_every_domain_intent_has_heldout_examples(intent):
    n = len(HELD.get(intent, []))
    assert n >= MIN_HELDOUT_PER_INTENT, f"{intent}: {n} held-out examples"


def test_only_domain_intents_are_used():
    unknown = (set(TRAIN) | set(HELD)) - set(ALL_INTENTS)
    assert not unknown, f"intents not in domain/: {sorted(unknown)}"


def test_no_heldout_example_in_training_data():
    train_norm = {normalize(ex): intent for intent, exs in TRAIN.items() for ex in exs}
    leaks = [
        (intent, ex, train_norm[normalize(ex)])
        for intent, exs in HELD.items()
        for ex in exs
        if normalize(ex) in train_norm
    ]
    assert not leaks, f"held-out examples also in training data: {leaks}"


def test_no_training_example_under_two_intents():
    seen = {}
    clashes = []
    for intent, exs in TRAIN.items():
        for ex in exs:
            key = normalize(ex)
            if key in seen and seen[key] != intent:
                clashes.append((ex, seen[key], intent))
            seen.setdefault(key, intent)
    assert not clashes, f"same example under two intents: {clashes}"
