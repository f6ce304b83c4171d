"""Prints intent accuracy and macro F1 from `rasa test nlu`'s intent_report.json.

Exits 1 when accuracy is below --min-accuracy, so `make test` fails on a worse model.
"""
import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", type=Path)
    parser.add_argument("--min-accuracy", type=float, default=0.90)
    args = parser.parse_args()
    report = json.loads(args.report.read_text())
    accuracy = report["accuracy"]
    macro_f1 = report["macro avg"]["f1-score"]
    weak = sorted(
        (name, scores["f1-score"]) for name, scores in report.items()
        if isinstance(scores, dict) and "f1-score" in scores
        and name not in ("macro avg", "weighted avg", "micro avg") and scores["f1-score"] < 0.9
    )
    print(f"Held-out NLU: {report['macro avg']['support']} messages, "
          f"intent accuracy {accuracy:.3f}, macro F1 {macro_f1:.3f}")
    for name, f1 in weak:
        print(f"  below 0.90 F1: {name} ({f1:.2f})")
    if accuracy < args.min_accuracy:
        print(f"FAIL: accuracy {accuracy:.3f} is below {args.min_accuracy:.2f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
