"""Replays each measured held-out set against the detector of the commit that measured it, with
today's way of consulting the safety net (`UrgencyDetector._raise`) and today's settings.

    PYTHONPATH=. python scripts/replay_measured_sets.py [COMMIT ...]

For each commit (default: those that measured held-out v5 to v30; v9 to v23 were measured with
today's way but for `threshold_set_aside`: before it, a sign set aside kept the net out), its
clinic_nlu/, data/ and tests/data/ are exported from git to a temporary folder and its
detector is built there: its rules and a safety net trained on its tuning half
only, so the held-out set it measured is as blind as it was then. Printed per set: the figures
as measured then, with the rules alone, and with the `safety_net` settings of today's
urgency_patterns.yml ("negatives escalated" counts any detection, as scripts/eval_urgency.py).

Old detectors are driven through private methods that all these commits share (`_working_doc`,
`_match`, `_sign_keys`, `_cue_names`, `_clauses`, `_Context`, `_valid_spans`), with today's
`UrgencyDetector._raise`, `_sign_levels`, `_status` and `_Context.denied`; a commit without
them is reported and skipped.
"""
import importlib.util
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
# (commit, set it measured)
MEASURED = (("c85aefc", "v5"), ("922a51b", "v6"), ("5a0015a", "v7"), ("a2f1c27", "v8"),
            ("65230ba", "v9"), ("76b5d51", "v10"), ("2ec0335", "v11"),
            ("334e16b", "v12"), ("0b363fc", "v13"), ("cde2742", "v14"),
            ("963f49d", "v15"), ("5241acb", "v16"), ("33f9846", "v17"),
            ("85fea74", "v18"), ("1f0549a", "v19"),
            ("d68ca12", "v20"), ("84954d9", "v21"), ("690dc51", "v22"),
            ("29bce21", "v23"), ("83bfc64", "v24"),
            ("3ddc13b", "v25+v26"), ("c727cc3", "v27+v28"),
            ("e1a4fa5", "v29"), ("7b59490", "v30"),
            ("05397a7", "v31"), ("5bd7176", "v32"),
            ("4cc4790", "v33"), ("75b4e12", "v34"),
            ("6f6c69b", "v35"), ("6e75917", "v36"),
            ("da1c670", "v37"), ("296d609", "v38"))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# Today's detector module, loaded under its own name so it does not clash with the old clinic_nlu.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
current_detector = _load("current_urgency_detector", ROOT / "clinic_nlu" / "urgency_detector.py")


def export(commit: str, folder: Path) -> None:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "clinic_nlu", "data",
                              "tests/data"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)


def replay(folder: Path) -> List[Tuple[str, str, str, Optional[str]]]:
    """(expected, measured, rules alone, today's) level of every held-out row, old detector."""
    for name in [m for m in sys.modules if m == "clinic_nlu" or m.startswith("clinic_nlu.")]:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        return _replay(folder)
    finally:
        sys.path.remove(str(folder))


def _replay(folder: Path) -> List[Tuple[str, str, str, Optional[str]]]:
    import clinic_nlu.urgency_detector as old_module
    from clinic_nlu.urgency_detector import UrgencyDetector
    from clinic_nlu.urgency_safety_net import load_labelled

    with open(ROOT / "clinic_nlu" / "urgency_patterns.yml", encoding="utf-8") as handle:
        settings = current_detector.SafetyNetSettings.from_config(yaml.safe_load(handle)["safety_net"])
    detector = UrgencyDetector.from_yaml()
    net = detector._safety_net
    rows = load_labelled(folder / "tests" / "data" / "urgency_heldout.yml")
    measured = [detector.detect(row["text"]) for row in rows]
    detector._safety_net = None
    rules = [detector.detect(row["text"]) for row in rows]
    detector._safety_net = net
    # today's reading of which signs the rules saw, on the old rules (after the old detector's
    # own measurement, which reads them its way), and of which are denied (negated, or an
    # animal's: a scope new in v16's commit)
    detector._sign_levels = types.MethodType(current_detector.UrgencyDetector._sign_levels, detector)
    detector._status = types.MethodType(current_detector.UrgencyDetector._status, detector)
    old_module._Context.denied = current_detector._Context.denied
    if not hasattr(old_module._Context, "_animal"):
        old_module._Context._animal = frozenset()
    replayed = []
    for row, then, found in zip(rows, measured, rules):
        text = row["text"]
        doc = detector._working_doc(text)
        today = found.level if found else None
        if len(doc):
            by_key = detector._match(doc)
            sign_seen = any(spans and key in detector._sign_keys for key, spans in by_key.items())
            cues = detector._cue_names(by_key)
            words = [t.text for t in doc]
            clause_of, hard_of = detector._clauses(words, [t.is_punct for t in doc],
                                                   [t.lemma_ for t in doc])
            ctx = old_module._Context(detector, doc, words, clause_of, hard_of, by_key)
            raised = current_detector.UrgencyDetector._raise(detector, text, cues, ctx, found,
                                                              sign_seen, settings)
            today = raised.level if raised else None
        replayed.append((row["level"], then.level if then else "none",
                         found.level if found else "none", today or "none"))
    return replayed


def figures(pairs: List[Tuple[str, str]]) -> str:
    def count(test) -> int:
        return sum(1 for expected, got in pairs if test(expected, got))

    parts = []
    for level in ("emergency", "urgent", "handoff"):
        parts.append(f"{level} {count(lambda e, g: e == g == level)}"
                     f"/{count(lambda e, g: e == level)}")
    escalating = ("emergency", "urgent")
    parts.append(f"not escalated {count(lambda e, g: e in escalating and g not in escalating)}")
    parts.append(f"negatives escalated {count(lambda e, g: e == 'none' and g != 'none')}"
                 f"/{count(lambda e, g: e == 'none')}")
    return ", ".join(parts)


def main(argv: List[str]) -> int:
    measured: Dict[str, str] = dict(MEASURED)
    for commit in argv or list(measured):
        with tempfile.TemporaryDirectory() as tmp:
            export(commit, Path(tmp))
            try:
                rows = replay(Path(tmp))
            except AttributeError as error:
                print(f"== {commit}: skipped, its detector lacks {error}")
                continue
        print(f"== {commit} (held-out {measured.get(commit, '?')}, {len(rows)} rows)")
        for name, column in (("as measured", 1), ("rules alone", 2), ("today's net", 3)):
            print(f"  {name:<12} {figures([(row[0], row[column]) for row in rows])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
