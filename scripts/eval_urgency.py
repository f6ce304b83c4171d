"""Evaluates the urgency detector (rules and safety net) on the two labelled halves: the tuning
half clinic_nlu/urgency_examples.yml, which the safety net also learns from, and the held-out half
tests/data/urgency_heldout.yml.

    PYTHONPATH=. python scripts/eval_urgency.py            # both halves
    PYTHONPATH=. python scripts/eval_urgency.py --tuning   # tuning half only

For each half: per-level precision and recall, a confusion matrix (rows = expected, columns =
detected), the share of `none` messages that escalate, and mean / max milliseconds per message.
Misclassified messages are listed for the TUNING half only; the held-out half reports counts
only, so its texts are never seen while tuning.

Exit code 1 if emergency or urgent recall is below 1.0 on either half, or more than 5% of the
`none` messages escalate on either half; else 0. tests/unit/test_urgency_detector.py imports
`evaluate` and `passes` and asserts the same thresholds.
"""
import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from clinic_nlu.urgency_detector import UrgencyDetector  # noqa: E402
from clinic_nlu.urgency_safety_net import LABELS, load_labelled  # noqa: E402

TUNING = ROOT / "clinic_nlu" / "urgency_examples.yml"
HELDOUT = ROOT / "tests" / "data" / "urgency_heldout.yml"
MAX_NONE_ESCALATED = 0.05
MUST_RECALL = ("emergency", "urgent")


@dataclass
class Figures:
    name: str
    total: int = 0
    confusion: Dict[Tuple[str, str], int] = field(default_factory=Counter)
    none_total: int = 0
    none_escalated: int = 0
    mean_ms: float = 0.0
    max_ms: float = 0.0
    # (text, kind, expected, detected, reason); filled for the tuning half only
    errors: List[Tuple[str, str, str, str, Optional[str]]] = field(default_factory=list)
    error_count: int = 0
    errors_by_kind: Dict[str, int] = field(default_factory=Counter)  # counts only

    def recall(self, level: str) -> float:
        expected = sum(n for (e, _), n in self.confusion.items() if e == level)
        return self.confusion[(level, level)] / expected if expected else 1.0

    def precision(self, level: str) -> float:
        detected = sum(n for (_, d), n in self.confusion.items() if d == level)
        return self.confusion[(level, level)] / detected if detected else 1.0

    def count(self, level: str) -> int:
        return sum(n for (e, _), n in self.confusion.items() if e == level)

    @property
    def none_escalated_share(self) -> float:
        return self.none_escalated / self.none_total if self.none_total else 0.0


def evaluate(path: Path, detector: Optional[UrgencyDetector] = None,
             show_errors: Optional[bool] = None) -> Figures:
    """Runs the detector over one half. Error texts are kept for the tuning half only."""
    path = Path(path)
    if show_errors is None:
        show_errors = path.resolve() != HELDOUT.resolve()
    detector = detector or UrgencyDetector.from_yaml()
    figures = Figures(name=path.name)
    timings = []
    for row in load_labelled(path):
        text = str(row.get("text", ""))
        expected = row["level"]
        t0 = time.perf_counter()
        detection = detector.detect(text)
        timings.append((time.perf_counter() - t0) * 1000)
        detected = detection.level if detection else "none"
        figures.total += 1
        figures.confusion[(expected, detected)] += 1
        if expected == "none":
            figures.none_total += 1
            figures.none_escalated += detected != "none"
        if detected != expected:
            figures.error_count += 1
            figures.errors_by_kind[str(row.get("kind", ""))] += 1
            if show_errors:
                figures.errors.append((text, row.get("kind", ""), expected, detected,
                                       detection.reason if detection else None))
    if timings:
        figures.mean_ms = sum(timings) / len(timings)
        figures.max_ms = max(timings)
    return figures


def passes(figures: Figures) -> bool:
    return (all(figures.recall(level) >= 1.0 for level in MUST_RECALL)
            and figures.none_escalated_share <= MAX_NONE_ESCALATED)


def report(figures: Figures) -> str:
    lines = [f"== {figures.name}: {figures.total} messages"]
    lines.append(f"{'level':<10} {'n':>4} {'precision':>10} {'recall':>8}")
    for level in LABELS:
        lines.append(f"{level:<10} {figures.count(level):>4} {figures.precision(level):>10.3f} "
                     f"{figures.recall(level):>8.3f}")
    lines.append("confusion (rows = expected, cols = detected):")
    lines.append(" " * 10 + "".join(f"{d:>10}" for d in LABELS))
    for e in LABELS:
        lines.append(f"{e:<10}" + "".join(f"{figures.confusion[(e, d)]:>10}" for d in LABELS))
    lines.append(f"none escalated: {figures.none_escalated}/{figures.none_total} "
                 f"= {100 * figures.none_escalated_share:.1f}% (max {100 * MAX_NONE_ESCALATED:.0f}%)")
    lines.append(f"time per message: mean {figures.mean_ms:.3f} ms, max {figures.max_ms:.3f} ms")
    lines.append(f"misclassified: {figures.error_count}"
                 + (f" (by kind: {dict(sorted(figures.errors_by_kind.items()))})"
                    if figures.errors_by_kind else ""))
    for text, kind, expected, detected, reason in figures.errors:
        lines.append(f"  [{kind}] expected {expected}, got {detected} ({reason}): {text}")
    lines.append("PASS" if passes(figures) else "FAIL")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tuning", action="store_true", help="evaluate the tuning half only")
    args = parser.parse_args(argv)
    detector = UrgencyDetector.from_yaml()
    halves = [TUNING] if args.tuning else [TUNING, HELDOUT]
    ok = True
    for path in halves:
        figures = evaluate(path, detector)
        print(report(figures))
        print()
        ok = ok and passes(figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
