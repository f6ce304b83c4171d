"""Settings that must agree across config.yml and the urgency patterns file."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "config.yml").read_text())


def component(name):
    (found,) = [c for c in CONFIG["pipeline"] if c["name"].endswith(name)]
    return found


def test_urgency_veto_uses_the_fallback_threshold():
    from clinic_nlu.urgency_component import UrgencyEscalation

    configured = component("UrgencyEscalation").get("fallback_threshold")
    default = UrgencyEscalation.get_default_config()["fallback_threshold"]
    assert (configured or default) == component("FallbackClassifier")["threshold"]


def test_urgency_runs_before_the_featurizers_and_after_the_fallback():
    names = [c["name"].rsplit(".", 1)[-1] for c in CONFIG["pipeline"]]
    assert names.index("UrgencyCheck") < names.index("CountVectorsFeaturizer")
    assert names.index("UrgencyEscalation") == len(names) - 1


def test_the_safety_net_labels_nlu_examples_by_the_escalation_intents():
    """The safety net reads the escalation intents' NLU examples as their level: the same
    intents UrgencyEscalation sets for each level."""
    from clinic_nlu.urgency_component import LEVEL_INTENTS
    from clinic_nlu.urgency_detector import DEFAULT_PATTERNS

    net = yaml.safe_load(DEFAULT_PATTERNS.read_text(encoding="utf-8"))["safety_net"]
    assert net["nlu_levels"] == {intent: level for level, intent in LEVEL_INTENTS.items()}
    assert (DEFAULT_PATTERNS.parent / net["nlu_examples"]).resolve() == (ROOT / "data" / "nlu").resolve()
