"""The saved regression cases (tests/regression/cases.yml, or $REGRESSION_CASES_FILE), end to end:
each question is asked the way the staff page asks it (web/reply_check.py: POST /model/parse,
then the REST channel as a new visitor) and must be understood as the saved intent, or get a
reply that escalates at the saved level (the call box a visitor sees)."""
import pytest

from web import reply_check as rc

CASES = rc.load_cases(rc.cases_file())


def case_id(case):
    expected = case.get("intent") or f"level={case.get('level')}"
    return f"{case.get('question', '')[:40]}->{expected}"


def test_there_are_cases():
    assert CASES, f"{rc.cases_file()} has no cases"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_case(stack, case):
    result = rc.ask_sync(stack.rasa_url, stack.secrets["RASA_AUTH_TOKEN"], case["question"],
                         api_url=stack.rasa_api_url)
    if "intent" in case:
        assert result["intent"]["name"] == case["intent"], (
            f"{case['question']!r} was understood as {result['intent']['name']} "
            f"({result['intent']['confidence']:.2f}), not {case['intent']}")
    else:
        level = (result["escalation"] or {}).get("level")
        assert level == case["level"], (
            f"{case['question']!r} escalated as {level}, not {case['level']}: "
            f"{result['reply_text']!r}")
        assert not result["escalation"].get("missing_from_reply"), (
            f"{case['question']!r} was understood as {level}, but the reply has no call box")
