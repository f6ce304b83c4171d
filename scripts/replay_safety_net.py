"""Replays the urgency safety net on each retired held-out set as if that set were still blind.

    PYTHONPATH=. python scripts/replay_safety_net.py

Every retired held-out part of clinic_nlu/urgency_examples.yml was written by someone who had seen
neither the patterns nor the earlier sets. For each one, a safety net is trained on every OTHER
row of the file (and the NLU examples, as the detector does) and scores that part. The rules have
since been tuned on these parts, so this measures the net alone, which is what stands behind the
rules on a new wording. Printed, over all retired parts together:

- per escalation threshold: how many emergency and urgent rows the net would escalate, and how
  many `none` rows: of those in which today's rules see no sign (`threshold` applies), of those
  in which they see one but neither fire nor set it aside (`threshold_after_sign`), and of those
  in which they set aside every sign they see (`threshold_set_aside`; one negated or an
  animal's keeps the net out);
- per upgrade threshold: how often a net sure of an emergency is right, i.e. the share of emergency
  rows and of urgent rows with P(emergency) at or above it (the net may raise a rule's urgent
  detection to an emergency: `upgrade` in the `safety_net` settings).

The settings in urgency_patterns.yml (`safety_net`) are chosen from these figures.
"""
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from clinic_nlu.urgency_detector import DEFAULT_PATTERNS, UrgencyDetector  # noqa: E402
from clinic_nlu.urgency_safety_net import (SafetyNet, SafetyNetSettings, load_labelled,  # noqa: E402
                                          load_nlu_examples)

PART_MARK = "# ================================================================ "
RETIRED = "retired held-out"
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
UPGRADES = (0.5, 0.6, 0.7, 0.8, 0.9)


def parts(path: Path) -> List[Tuple[str, int]]:
    """(part name, number of rows) of the examples file, in order; the rows before the first
    part mark are the first tuning set."""
    names, counts = ["first tuning set"], [0]
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(PART_MARK):
            names.append(line[len(PART_MARK):].strip())
            counts.append(0)
        elif line.startswith("- {"):
            counts[-1] += 1
    return list(zip(names, counts))


def replay(detector: UrgencyDetector, config: Dict) -> List[Tuple[str, str, bool, Dict[str, float]]]:
    """(part, level, sign status, net probabilities) of every row of a retired part, each
    scored by a net trained without its part."""
    folder = DEFAULT_PATTERNS.parent
    rows = load_labelled(folder / config["examples"])
    layout = parts(folder / config["examples"])
    if sum(n for _, n in layout) != len(rows):
        raise SystemExit("could not split the examples file into its parts")
    part_of = [name for name, n in layout for _ in range(n)]
    nlu = load_nlu_examples(folder / config["nlu_examples"], config["nlu_levels"])
    cues = {text: detector.scope_cues(text) for text in {r["text"] for r in rows + nlu}}
    settings = SafetyNetSettings.from_config(config)
    scored = []
    for name, _ in layout:
        if not name.startswith(RETIRED):
            continue
        train = [r for r, p in zip(rows, part_of) if p != name] + nlu
        net = SafetyNet.fit([r["text"] for r in train], [cues[r["text"]] for r in train],
                            [r["level"] for r in train], settings)
        for row, part in zip(rows, part_of):
            if part == name:
                scored.append((name, row["level"], detector.sign_status(row["text"]),
                               net.escalation_probability(row["text"], cues[row["text"]])))
        print(f"  scored {name}", file=sys.stderr)
    return scored


def share(hits: int, total: int) -> str:
    return f"{hits}/{total} = {hits / total:.3f}" if total else "-"


def main() -> int:
    with open(DEFAULT_PATTERNS, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)["safety_net"]
    detector = UrgencyDetector.from_yaml(safety_net=False)
    scored = replay(detector, config)
    escalating = [p for _, level, _, p in scored if level in ("emergency", "urgent")]
    unseen_negatives = [p for _, level, sign, p in scored if level == "none" and sign == "no sign"]
    seen_negatives = [p for _, level, sign, p in scored if level == "none" and sign == "seen"]
    aside_negatives = [p for _, level, sign, p in scored if level == "none" and sign == "set aside"]
    parts_seen = sorted({name for name, *_ in scored})
    print(f"{len(scored)} rows of {len(parts_seen)} retired held-out sets ({', '.join(parts_seen)})")
    print(f"settings: {config}")
    print("\nescalation threshold (P(emergency) + P(urgent)): rows the net would escalate")
    print(f"{'t':>5}  {'emergency+urgent':>20}  {'none, rules see no sign':>24}  "
          f"{'none, a sign not set aside':>28}  {'none, every sign set aside':>28}")
    for t in THRESHOLDS:
        def over(ps):
            return f"{sum(p['emergency'] + p['urgent'] >= t for p in ps)}/{len(ps)}"
        print(f"{t:>5.2f}  {over(escalating):>20}  {over(unseen_negatives):>24}  "
              f"{over(seen_negatives):>28}  {over(aside_negatives):>28}")
    emergencies = [p for _, level, _, p in scored if level == "emergency"]
    urgents = [p for _, level, _, p in scored if level == "urgent"]
    print("\nupgrade threshold (P(emergency)):")
    print(f"{'u':>5}  {'emergency rows at or above':>28}  {'urgent rows at or above':>24}")
    for u in UPGRADES:
        print(f"{u:>5.2f}  {share(sum(p['emergency'] >= u for p in emergencies), len(emergencies)):>28}  "
              f"{share(sum(p['emergency'] >= u for p in urgents), len(urgents)):>24}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
