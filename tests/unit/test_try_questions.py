"""The reply checker's pure parts (web/reply_check.py): reading question files, describing a
reply, the CSV/HTML reports, the regression cases file, and the "could not answer" list read
from a tracker store. No server and no model needed; `make try` against real servers is tested
in tests/e2e/test_try_questions.py."""
import csv
import io
import json
import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from web import reply_check as rc

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# Reading questions
# ---------------------------------------------------------------------------------------------

def test_text_file_one_question_a_line():
    text = "\ufeffwhat is a pain pump\n\n   how long is the trial?  \n# a comment\nit  hurts\n"
    assert rc.read_questions(text, "q.txt") == ["what is a pain pump", "how long is the trial?",
                                                "it hurts"]


def test_csv_file_with_a_question_column():
    text = 'id,Question,note\n1,"is it safe, really?",x\n2,how long is the trial,\n3,,empty\n'
    assert rc.read_questions(text, "Q.CSV") == ["is it safe, really?", "how long is the trial"]


def test_csv_without_a_question_column_is_refused():
    with pytest.raises(ValueError, match="question"):
        rc.read_questions("text\nhello\n", "q.csv")


def test_too_many_or_too_long_questions_are_refused():
    with pytest.raises(ValueError):
        rc.read_questions("x" * (rc.MAX_QUESTION_CHARS + 1), "q.txt")
    with pytest.raises(ValueError):
        rc.read_questions("q\n" * (rc.MAX_BATCH_QUESTIONS + 1), "q.txt")


# ---------------------------------------------------------------------------------------------
# The project's files
# ---------------------------------------------------------------------------------------------

def test_threshold_comes_from_config_yml():
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    fallback = next(c for c in config["pipeline"] if c["name"] == "FallbackClassifier")
    assert rc.fallback_threshold() == float(fallback["threshold"])


def test_every_response_with_a_source_is_mapped():
    sources = rc.load_sources()
    assert sources["utter_trial"] == "How does this procedure work?"
    assert "utter_escalate_urgent" in sources and sources["utter_escalate_urgent"] is None
    intents = rc.load_intents()
    assert "ask_trial" in intents and "report_urgent" in intents and "nlu_fallback" in intents


# ---------------------------------------------------------------------------------------------
# Describing a reply
# ---------------------------------------------------------------------------------------------

SOURCES = {"utter_trial": "How does this procedure work?", "utter_no_info": "Need to speak",
           "utter_escalate_urgent": None, "utter_refill": "How does this procedure work?"}


def ranking(*pairs):
    return [{"name": n, "confidence": c} for n, c in pairs]


def test_describe_an_answer():
    parse = {"intent": {"name": "ask_trial", "confidence": 0.82},
             "intent_ranking": ranking(("ask_trial", 0.82), ("ask_how_long", 0.1),
                                       ("ask_procedure", 0.05), ("ask_recovery", 0.02),
                                       ("greet", 0.01))}
    reply = [{"recipient_id": "staff-1", "text": "The trial ...",
              "buttons": [{"title": "Recovery", "payload": "/ask_recovery"}]}]
    events = [{"event": "bot", "text": "The trial ...", "metadata": {"utter_action": "utter_trial"}}]
    d = rc.describe("how long is the trial", parse, reply, events, 0.35, SOURCES)
    assert d["intent"] == {"name": "ask_trial", "confidence": 0.82}
    assert [r["name"] for r in d["ranking"]] == ["ask_how_long", "ask_procedure", "ask_recovery"]
    assert d["source"] == "How does this procedure work?"
    assert d["reply"][0]["buttons"] == [{"title": "Recovery", "payload": "/ask_recovery"}]
    assert d["escalation"] is None and not d["low_confidence"] and not d["fell_back"]
    assert d["result"] == "answered"


def test_describe_a_fallback_is_low_confidence():
    parse = {"intent": {"name": "nlu_fallback", "confidence": 0.35},
             "intent_ranking": ranking(("nlu_fallback", 0.35), ("ask_dose", 0.2), ("greet", 0.1))}
    events = [{"event": "bot", "metadata": {"utter_action": "utter_default"}}]
    d = rc.describe("blorp", parse, [{"text": "Sorry"}], events, 0.35, SOURCES)
    assert d["low_confidence"] and d["fell_back"] and d["result"] == "fell back"
    assert d["best_confidence"] == 0.2
    assert [r["name"] for r in d["ranking"]] == ["ask_dose", "greet"]


def test_describe_low_confidence_without_fallback():
    parse = {"intent": {"name": "ask_dose", "confidence": 0.3},
             "intent_ranking": ranking(("ask_dose", 0.3), ("greet", 0.2))}
    d = rc.describe("q", parse, [{"text": "x"}], [], 0.35, SOURCES)
    assert d["low_confidence"] and not d["fell_back"]
    assert not rc.describe("q", parse, [{"text": "x"}], [], 0.25, SOURCES)["low_confidence"]


def test_describe_an_escalation():
    parse = {"intent": {"name": "report_urgent", "confidence": 1.0},
             "intent_ranking": ranking(("ask_refill", 0.3), ("ask_dose", 0.2)),
             "urgency": {"level": "urgent", "reason": "pump alarm", "question_intent": None}}
    reply = [{"text": "Call the clinic now",
              "custom": {"type": "escalation", "level": "urgent", "phone": "+14702991998",
                         "reason": "pump alarm"}}]
    events = [{"event": "bot", "metadata": {"utter_action": "utter_escalate_urgent"}}]
    d = rc.describe("my pump is beeping", parse, reply, events, 0.35, SOURCES)
    assert d["escalation"]["level"] == "urgent" and d["escalation"]["reason"] == "pump alarm"
    assert d["reply"][0]["escalation"]["phone"] == "+14702991998"
    assert d["result"] == "escalated" and not d["low_confidence"] and d["source"] is None


def test_urgency_without_a_call_box_is_flagged():
    parse = {"intent": {"name": "report_urgent", "confidence": 1.0}, "intent_ranking": [],
             "urgency": {"level": "urgent", "reason": "fever"}}
    d = rc.describe("q", parse, [{"text": "hi"}], [], 0.35, SOURCES)
    assert d["escalation"]["missing_from_reply"] is True


def test_bot_events_of_the_last_turn_only():
    tracker = {"events": [{"event": "user"}, {"event": "bot", "text": "old"},
                          {"event": "action"}, {"event": "user"}, {"event": "bot", "text": "new"}]}
    assert [e["text"] for e in rc.bot_events_of_last_turn(tracker)] == ["new"]


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------

def rows():
    answered = rc.describe(
        "how long is the trial",
        {"intent": {"name": "ask_trial", "confidence": 0.9}, "intent_ranking": []},
        [{"text": "24-48 hours"}], [{"event": "bot", "metadata": {"utter_action": "utter_trial"}}],
        0.35, SOURCES)
    formula = rc.describe(
        "=HYPERLINK(\"http://evil\")", {"intent": {"name": "nlu_fallback", "confidence": 0.35},
                                        "intent_ranking": []},
        [{"text": "<b>Sorry</b>"}], [{"event": "bot", "metadata": {"utter_action": "utter_default"}}],
        0.35, SOURCES)
    return [answered, formula, rc.error_row("broken", "The assistant could not be reached.")]


def test_csv_report_columns_and_rows():
    parsed = list(csv.DictReader(io.StringIO(rc.report_csv(rows()))))
    assert list(parsed[0].keys()) == list(rc.COLUMNS)
    assert parsed[0]["question"] == "how long is the trial"
    assert parsed[0]["source section"] == "How does this procedure work?"
    assert parsed[0]["confidence"] == "0.90" and parsed[0]["low confidence"] == "no"
    assert parsed[1]["question"].startswith("'=")  # never run as a spreadsheet formula
    assert parsed[1]["low confidence"] == "yes" and parsed[1]["result"] == "fell back"
    assert parsed[2]["result"] == "error"


def test_html_report_escapes_everything():
    page = rc.report_html(rows())
    assert "<b>Sorry</b>" not in page and "&lt;b&gt;Sorry&lt;/b&gt;" in page
    for column in rc.COLUMNS:
        assert f">{column}</th>" in page
    assert "3 questions: 1 answered, 1 fell back, 0 escalated, 1 low confidence, 1 errors" in page


def test_reports_are_written(tmp_path):
    csv_path, html_path = rc.write_reports(rows(), tmp_path, stem="t")
    assert csv_path == tmp_path / "t.csv" and html_path.exists()


# ---------------------------------------------------------------------------------------------
# Regression cases
# ---------------------------------------------------------------------------------------------

def test_save_case_add_unchanged_update(tmp_path):
    path = tmp_path / "cases.yml"
    assert rc.save_case("How long is the trial", intent="ask_trial", path=path)[0] == "added"
    assert rc.save_case("  How long   is the trial ", intent="ask_trial", path=path)[0] == "unchanged"
    assert rc.save_case("my pump: beeping!", level="urgent", path=path)[0] == "added"
    text = path.read_text()
    assert text.startswith("# Regression cases")
    assert yaml.safe_load(text) == [{"question": "How long is the trial", "intent": "ask_trial"},
                                    {"question": "my pump: beeping!", "level": "urgent"}]
    assert rc.save_case("how long is the trial", level="handoff", path=path)[0] == "updated"
    text = path.read_text()
    assert text.startswith("# Regression cases")
    assert rc.load_cases(path)[0] == {"question": "how long is the trial", "level": "handoff"}
    assert len(rc.load_cases(path)) == 2


@pytest.mark.parametrize("kwargs", [
    {"question": "", "intent": "ask_trial"},
    {"question": "q", "intent": "not_an_intent"},
    {"question": "q", "level": "soon"},
    {"question": "q", "intent": "ask_trial", "level": "urgent"},
    {"question": "q"},
])
def test_bad_cases_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        rc.save_case(path=tmp_path / "cases.yml", **kwargs)
    assert not (tmp_path / "cases.yml").exists()


def test_the_seeded_cases_are_valid():
    cases = rc.load_cases(rc.CASES_FILE)
    assert len(cases) >= 8
    for case in cases:
        rc.validate_case(case["question"], case.get("intent"), case.get("level"))


def test_save_test_script(tmp_path, capsys):
    from scripts.save_test import main
    path = tmp_path / "cases.yml"
    assert main(["--question", "what is a pain pump", "--intent", "ask_what_is_pump",
                 "--cases", str(path)]) == 0
    assert "Added" in capsys.readouterr().out
    assert main(["--question", "x", "--cases", str(path)]) == 2
    assert rc.load_cases(path) == [{"question": "what is a pain pump", "intent": "ask_what_is_pump"}]


# ---------------------------------------------------------------------------------------------
# What visitors asked that the assistant could not answer
# ---------------------------------------------------------------------------------------------

def make_tracker_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
               "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
               "action_name VARCHAR(255), data TEXT)")
    t = time.time() - 100

    def user(sender, ts, text, intent, conf, ranking=None, urgency=None):
        parse = {"intent": {"name": intent, "confidence": conf},
                 "intent_ranking": ranking or [{"name": intent, "confidence": conf}]}
        if urgency:
            parse["urgency"] = urgency
        db.execute("INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) "
                   "VALUES (?, 'user', ?, ?, ?)",
                   (sender, ts, intent, json.dumps({"event": "user", "text": text,
                                                    "parse_data": parse})))

    def action(sender, ts, name):
        db.execute("INSERT INTO events (sender_id, type_name, timestamp, action_name, data) "
                   "VALUES (?, 'action', ?, ?, '{}')", (sender, ts, name))

    user("web-a", t + 1, "what does it cost", "ask_not_on_page", 0.9)
    action("web-a", t + 2, "utter_no_info")
    action("web-a", t + 3, "action_listen")
    user("web-a", t + 4, "how long is the trial", "ask_trial", 0.95)
    action("web-a", t + 5, "utter_trial")
    user("web-b", t + 6, "blorp zzz", "nlu_fallback", 0.35,
         [{"name": "nlu_fallback", "confidence": 0.35}, {"name": "greet", "confidence": 0.2}])
    action("web-b", t + 7, "action_default_fallback")
    user("web-b", t + 8, "hmm maybe dose", "ask_dose", 0.3)
    action("web-b", t + 9, "utter_dose")
    user("web-b", t + 10, "/ask_trial", "ask_trial", 1.0)
    user("web-c", t + 11, "my pump is beeping", "report_urgent", 1.0,
         [{"name": "ask_refill", "confidence": 0.1}], {"level": "urgent", "reason": "alarm"})
    user("staff-123", t + 12, "staff asked this", "nlu_fallback", 0.35)
    action("staff-123", t + 13, "action_default_fallback")
    db.commit()
    db.close()


def test_unanswered_messages(tmp_path):
    path = tmp_path / "conversations.db"
    make_tracker_db(path)
    items = rc.unanswered_messages(f"sqlite:///{path}", threshold=0.35)
    assert [i["text"] for i in items] == ["hmm maybe dose", "blorp zzz", "what does it cost"]
    assert items[0]["why"] == ["low confidence"]
    assert items[1]["why"] == ["not understood"]
    assert items[2]["why"] == ["not on the page"]
    assert "web-a" not in json.dumps(items) and "staff" not in json.dumps(items)
    assert len(rc.unanswered_messages(f"sqlite:///{path}", threshold=0.35, limit=1)) == 1


def test_unanswered_without_a_database(tmp_path, monkeypatch):
    assert rc.unanswered_messages(f"sqlite:///{tmp_path / 'none.db'}") == []
    assert not (tmp_path / "none.db").exists()
    monkeypatch.setenv("TRACKER_DB_URL", "postgresql://u@db/x")
    assert rc.tracker_db_url() == "postgresql://u@db/x"
    monkeypatch.delenv("TRACKER_DB_URL")
    monkeypatch.setenv("TRACKER_SQLITE_DB", "/data/c.db")
    assert rc.tracker_db_url() == "sqlite:////data/c.db"
