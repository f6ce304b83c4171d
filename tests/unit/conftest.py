"""Fixtures shared by the urgency detector's unit tests: built once per test run (the safety
net trains when the detector loads)."""
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
