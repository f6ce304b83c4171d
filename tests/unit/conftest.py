"""Fixtures shared by several unit test files, built once per test run: the urgency detector
(its safety net trains when it loads) and real conversations with the trained model."""
import asyncio
import importlib.util
import random
from pathlib import Path

import pytest
import yaml
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from clinic.rule_policy import FastRulePolicy
from clinic_nlu.spacy_pipeline import build
from clinic_nlu.urgency_detector import DEFAULT_PATTERNS, UrgencyDetector

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "clinic.tar.gz"
# The urgent ones call the action server, which is not running here.
SKIP = {"report_emergency", "report_urgent", "request_human"}


@pytest.fixture(scope="session")
def nlp():
    return build()


@pytest.fixture(scope="session")
def detector(nlp):
    """The detector as the assistant runs it: the rules and the safety net."""
    return UrgencyDetector.from_yaml(DEFAULT_PATTERNS, nlp=nlp)


@pytest.fixture(scope="session")
def eval_urgency():
    """scripts/eval_urgency.py: the labelled table's two halves (TUNING, HELDOUT), `evaluate`."""
    path = ROOT / "scripts" / "eval_urgency.py"
    spec = importlib.util.spec_from_file_location("eval_urgency", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def heldout_messages(skip=frozenset()):
    """The held-out NLU messages (tests/nlu/heldout.yml), but those of the intents in `skip`."""
    data = yaml.safe_load((ROOT / "tests" / "nlu" / "heldout.yml").read_text(encoding="utf-8"))
    return [line.strip()[2:] for block in data["nlu"] if block["intent"] not in skip
            for line in block["examples"].splitlines() if line.strip().startswith("- ")]


@pytest.fixture(scope="session")
def conversations():
    """(domain, the model's FastRulePolicy, trackers of 6 conversations of 5 to 30 held-out
    NLU messages), from the trained model (`make train` first; `make test` trains first)."""
    assert MODEL.exists(), "no trained model: run `make train`"
    agent = Agent.load(str(MODEL))
    policy = next(node._component for node in agent.processor.graph_runner._instantiated_nodes.values()
                  if isinstance(node._component, FastRulePolicy))
    messages = heldout_messages(skip=SKIP)
    random.Random(7).shuffle(messages)

    async def talk():
        trackers = []
        for number in range(6):
            sender = f"conversation-{number}"
            for text in messages[number * 30: number * 30 + 5 * (number + 1)]:
                await agent.handle_message(UserMessage(text, CollectingOutputChannel(), sender))
            trackers.append(await agent.tracker_store.retrieve(sender))
        return trackers

    return agent.domain, policy, asyncio.run(talk())
