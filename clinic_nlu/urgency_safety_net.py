"""A learned second opinion for the urgency detector, which can only RAISE an escalation.

Every held-out set written by someone new held urgent messages whose wording the rules did not
list. This linear classifier is trained on the labelled messages of urgency_examples.yml (the
tuning half of the table) and the NLU training examples. It never lowers or removes a detection
of the rules (`decide`):
- where no rule fired, it escalates when at least `threshold` sure that the message reports an
  emergency or an urgent problem; `threshold_after_sign` where the rules saw a sign in scope but
  could not complete a rule with it ("can hardly breathe"); `threshold_set_aside`, the highest,
  where they put every sign they saw out of scope or excepted it, so that their call stands
  unless the net is all but certain ("can barley breath lips going blue": "can" read as a
  question). A sign negated or an animal's ("my pump isn't beeping", "our cat can't breathe")
  is their call alone: the detector does not ask the net then;
- where a rule found an urgent problem, it makes it an emergency when P(emergency) >= `upgrade`
  (the detector asks only if the rules saw an emergency sign they could not complete).

Its features are the message's words and character n-grams, plus the scope cues the rules found
in it (negation, past, chronic, ...). So "always in pain since 2015" and "in pain since this
morning" weigh differently. Its settings are in urgency_patterns.yml (`safety_net`), chosen with
scripts/replay_safety_net.py and scripts/replay_measured_sets.py (README "Urgency detection").
"""
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import yaml
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

# The scope cues of the rules that can make a mention harmless; each is one feature.
CUE_FEATURES = ("negation", "negation_after", "hypothetical", "future", "general", "past",
                "past_recent", "chronic", "chronic_weak", "candidacy", "resolved",
                "resolved_weak", "supposition")
ESCALATING = ("emergency", "urgent")
LABELS = ("emergency", "urgent", "handoff", "none")
_RUNS = re.compile(r"(\w)\1{2,}")


@dataclass(frozen=True)
class SafetyNetSettings:
    threshold: float             # P(emergency) + P(urgent) at which the net escalates a message
                                 # in which the rules saw no sign
    threshold_after_sign: float  # the same where the rules saw a sign but fired no rule
    threshold_set_aside: float   # the same where they put every sign they saw out of scope
    upgrade: float               # P(emergency) at which an urgent detection becomes an emergency
    c: float                     # inverse regularisation strength of the logistic regression
    cue_weight: float            # value of a present scope-cue feature

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "SafetyNetSettings":
        settings = cls(*(float(config[name]) for name in
                         ("threshold", "threshold_after_sign", "threshold_set_aside", "upgrade",
                          "c", "cue_weight")))
        probabilities = (settings.threshold, settings.threshold_after_sign,
                         settings.threshold_set_aside, settings.upgrade)
        if not all(0.0 < p < 1.0 for p in probabilities) or settings.c <= 0 or settings.cue_weight < 0:
            raise ValueError(f"bad safety_net settings: {config}")
        return settings


# libyaml's parser when PyYAML has it (the pinned wheel does): the examples file took about 1 s
# to parse in Python at every start of the detector, 0.13 s with it; the same result.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_labelled(path: Path) -> List[Dict[str, Any]]:
    """Rows {text, level, kind, question?} of a labelled table (urgency_examples.yml, the
    held-out set in tests/data)."""
    with open(path, encoding="utf-8") as handle:
        rows = yaml.load(handle, Loader=_YAML_LOADER) or []
    for row in rows:
        if row.get("level") not in LABELS or not isinstance(row.get("text"), str):
            raise ValueError(f"{Path(path).name}: a row without a text or with a bad level: {row}")
    return rows


def load_nlu_examples(folder: Path, levels: Dict[str, str]) -> List[Dict[str, Any]]:
    """The examples of Rasa's NLU training data files in `folder` as labelled rows: the level
    of their intent in `levels`, else `none` (an ordinary question)."""
    rows = []
    for path in sorted(Path(folder).glob("*.yml")):
        with open(path, encoding="utf-8") as handle:
            blocks = (yaml.load(handle, Loader=_YAML_LOADER) or {}).get("nlu") or []
        for block in blocks:
            level = levels.get(block.get("intent"), "none")
            for line in str(block.get("examples", "")).splitlines():
                if line.strip().startswith("- "):
                    rows.append({"text": line.strip()[2:], "level": level, "kind": "nlu"})
    return rows


def _normalize(text: str) -> str:
    return _RUNS.sub(r"\1\1", text.lower())   # "soooo" and "so" share their n-grams


class SafetyNet:
    def __init__(self, settings: SafetyNetSettings) -> None:
        self.settings = settings
        self._vectorizers = (
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"[a-z0-9']+",
                            sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        )
        self._model = LogisticRegression(C=settings.c, max_iter=3000, class_weight="balanced")
        self._escalating: List[int] = []

    @classmethod
    def fit(cls, texts: Sequence[str], cues: Sequence[Iterable[str]], levels: Sequence[str],
            settings: SafetyNetSettings) -> "SafetyNet":
        missing = {*ESCALATING, "none"} - set(levels)
        if missing:   # (and with fewer than 3 classes sklearn's model would be binary)
            raise ValueError(f"the safety net needs examples of every level; none of {sorted(missing)}")
        net = cls(settings)
        normalized = [_normalize(t) for t in texts]
        features = hstack([v.fit_transform(normalized) for v in net._vectorizers]
                          + [net._cue_matrix(cues)]).tocsr()
        net._model.fit(features, list(levels))
        classes = list(net._model.classes_)
        net._escalating = [classes.index(level) for level in ESCALATING]
        net._compile()
        return net

    def _cue_matrix(self, cues: Sequence[Iterable[str]]) -> csr_matrix:
        weight = self.settings.cue_weight
        rows = [[weight if name in found else 0.0 for name in CUE_FEATURES]
                for found in map(set, cues)]
        return csr_matrix(np.array(rows, dtype=float).reshape(len(rows), len(CUE_FEATURES)))

    def _compile(self) -> None:
        """Prediction is done by hand with the fitted numbers: sklearn's checks on every call
        cost about 2.5 ms a message, this about 0.1 ms (a unit test compares the two)."""
        self._analyzers = []
        offset = 0
        for vectorizer in self._vectorizers:
            self._analyzers.append((vectorizer.build_analyzer(), vectorizer.vocabulary_,
                                    vectorizer.idf_, offset))
            offset += len(vectorizer.vocabulary_)
        self._cue_columns = {name: offset + i for i, name in enumerate(CUE_FEATURES)}
        self._coef = self._model.coef_
        self._intercept = self._model.intercept_

    def _features(self, text: str, cues: FrozenSet[str]) -> Tuple[np.ndarray, np.ndarray]:
        """Columns and values of the message's non-zero features (as the vectorizers would:
        sublinear tf times idf, L2-normalised per vectorizer)."""
        columns, values = [], []
        normalized = _normalize(text)
        for analyze, vocabulary, idf, offset in self._analyzers:
            counts = Counter(j for j in map(vocabulary.get, analyze(normalized)) if j is not None)
            if not counts:
                continue
            cols = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts))))
            weights *= idf[cols]
            columns.append(cols + offset)
            values.append(weights / np.linalg.norm(weights))
        found = [self._cue_columns[name] for name in cues if name in self._cue_columns]
        columns.append(np.array(found, dtype=np.intp))
        values.append(np.full(len(found), self.settings.cue_weight))
        return np.concatenate(columns), np.concatenate(values)

    def escalation_probability(self, text: str, cues: FrozenSet[str]) -> Dict[str, float]:
        """P(emergency) and P(urgent) of one message (multinomial logistic regression)."""
        columns, values = self._features(text, cues)
        logits = self._coef[:, columns] @ values + self._intercept
        exp = np.exp(logits - logits.max())
        probabilities = exp / exp.sum()
        return {level: float(probabilities[i]) for level, i in zip(ESCALATING, self._escalating)}

    def sklearn_probability(self, texts: Sequence[str], cues: Sequence[FrozenSet[str]]) -> np.ndarray:
        """The same through sklearn, one row per message, columns in ESCALATING order (tests)."""
        normalized = [_normalize(t) for t in texts]
        features = hstack([v.transform(normalized) for v in self._vectorizers]
                          + [self._cue_matrix(cues)]).tocsr()
        return self._model.predict_proba(features)[:, self._escalating]


def decide(p: Dict[str, float], rules_level: Optional[str], sign_status: str,
           settings: SafetyNetSettings) -> Optional[str]:
    """"emergency" or "urgent" when the net's probabilities `p` are sure enough that the message
    reports more than the rules found (`rules_level`: their level, None if they found nothing),
    else None. After an urgent detection it may only say "emergency". Otherwise how sure it must
    be depends on what the rules saw (`sign_status`, UrgencyDetector.sign_status): "no sign",
    a sign "seen" in scope that completed no rule, or every sign "set aside" by them."""
    if rules_level == "emergency":
        return None
    if rules_level == "urgent":
        return "emergency" if p["emergency"] >= settings.upgrade else None
    threshold = {"no sign": settings.threshold, "seen": settings.threshold_after_sign,
                 "set aside": settings.threshold_set_aside}[sign_status]
    if p["emergency"] + p["urgent"] < threshold:
        return None
    return "emergency" if p["emergency"] > p["urgent"] else "urgent"
