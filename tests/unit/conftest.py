"""Fixtures shared by the urgency detector's unit tests: built once per test run (the safety
net trains when the detector loads)."""
import importlib.util
from pathlib import Path

import pytest

from clinic_nlu.spacy_pipeline import build
from clinic_nlu.urgency_detector import DEFAULT_PATTERNS, UrgencyDetector


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
    path = Path(__file__).resolve().parents[2] / "scripts" / "eval_urgency.py"
    spec = importlib.util.spec_from_file_location("eval_urgency", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
