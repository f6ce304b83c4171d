"""`make try`'s module (scripts/try_questions.py) on small files, against the test servers."""
import csv

import pytest

from scripts import try_questions
from web import reply_check as rc

QUESTIONS = ["how long is the trial", "how much does the pump cost",
             "my pump is alarming right now", "xqzv blorp wibble"]


@pytest.fixture
def run_file(stack, tmp_path):
    def run(name, text):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        questions = rc.read_questions(path.read_text(), path.name)
        return try_questions.run(questions, stack.rasa_url, stack.secrets["RASA_AUTH_TOKEN"],
                                 tmp_path / "reports", quiet=True, api_url=stack.rasa_api_url)
    return run


def check_report(rows, csv_path, html_path):
    assert csv_path.parent.name == "reports" and csv_path.suffix == ".csv"
    with csv_path.open(encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == rc.COLUMNS
        lines = list(reader)
    assert [line["question"] for line in lines] == QUESTIONS
    trial, cost, alarm, gibberish = lines
    assert "24-48 hours" in trial["reply"] and trial["intent"] == "ask_trial"
    assert trial["source section"] == "How does this procedure work?"
    assert float(trial["confidence"]) > 0 and trial["low confidence"] == "no"
    assert trial["escalation level"] == "" and trial["result"] == "answered"
    assert cost["result"] == "fell back" and "don't have that information" in cost["reply"]
    assert alarm["escalation level"] == "urgent" and alarm["result"] == "escalated"
    assert gibberish["low confidence"] == "yes"
    page = html_path.read_text(encoding="utf-8")
    assert all(f">{c}</th>" in page for c in rc.COLUMNS)
    assert page.count("<tr class=") == len(QUESTIONS)
    summary = rc.summarize(rows)
    assert summary["questions"] == 4 and summary["escalated"] == 1 and summary["errors"] == 0
    assert summary["answered"] + summary["fell back"] + summary["escalated"] == 4


def test_text_file(run_file):
    check_report(*run_file("questions.txt", "\n".join(QUESTIONS) + "\n\n"))


def test_csv_file(run_file):
    body = "id,question\n" + "".join(f'{i},"{q}"\n' for i, q in enumerate(QUESTIONS))
    check_report(*run_file("questions.csv", body))


def test_command_line(stack, tmp_path, monkeypatch, capsys):
    path = tmp_path / "q.txt"
    path.write_text("how long is the trial\nhow much does the pump cost\n")
    monkeypatch.setenv("RASA_AUTH_TOKEN", stack.secrets["RASA_AUTH_TOKEN"])
    code = try_questions.main([str(path), "--rasa-url", stack.rasa_url,
                               "--rasa-api-url", stack.rasa_api_url,
                               "--out-dir", str(tmp_path / "reports")])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 questions: 1 answered, 1 fell back, 0 escalated" in out
    assert ".csv" in out and ".html" in out
    assert stack.secrets["RASA_AUTH_TOKEN"] not in out
