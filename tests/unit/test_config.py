"""Settings that must agree across config.yml."""
from pathlib import Path

import yaml

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yml").read_text())


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
