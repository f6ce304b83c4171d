"""`make save-test Q="..." INTENT=ask_trial` (or LEVEL=urgent): saves a question with what the
assistant must make of it to tests/regression/cases.yml, which `make test` checks end to end.
The same code as the staff page's "Save as test" (web/reply_check.py)."""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from web import reply_check as rc  # noqa: E402


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='make save-test Q="..." INTENT=... | LEVEL=...',
                                     description=__doc__)
    parser.add_argument("--question", "-q", default="")
    parser.add_argument("--intent", default="")
    parser.add_argument("--level", default="", help=" | ".join(rc.LEVELS))
    parser.add_argument("--cases", type=Path, default=None,
                        help="default: $REGRESSION_CASES_FILE or tests/regression/cases.yml")
    args = parser.parse_args(argv)
    try:
        status, case = rc.save_case(args.question, args.intent or None, args.level or None,
                                    args.cases)
    except ValueError as error:
        print(f"Not saved: {error}\n"
              f'Usage: make save-test Q="how long is the trial" INTENT=ask_trial\n'
              f'       make save-test Q="my pump is alarming right now" LEVEL=urgent',
              file=sys.stderr)
        return 2
    path = args.cases or rc.cases_file()
    expected = f"intent {case['intent']}" if "intent" in case else f"escalation {case['level']}"
    print(f"{status.capitalize()}: {case['question']!r} -> {expected} ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
