"""Ask the assistant a question the way a visitor would, and describe the reply for staff.

The ONE implementation of "ask a question and describe the reply", shared by the staff page
(web/staff.py), `make try` (scripts/try_questions.py) and the regression tests
(tests/e2e/test_regression.py). For each question:

1. POST {rasa}/model/parse?token=...     -> intent, confidence, ranking, urgency (level, reason)
2. POST {rasa}/webhooks/rest/webhook     -> the reply exactly as the widget gets it
   (sender "staff-<uuid>": a throwaway conversation, or the same one across questions in
   conversation mode)
3. GET  {rasa}/conversations/{sender}/tracker?token=...
                                          -> the bot events' metadata.utter_action, mapped to the
                                             page section (metadata.source in domain/*.yml)

The Rasa token (RASA_AUTH_TOKEN) only ever goes to the Rasa server: errors are reported without
URLs, and nothing this module returns contains it.

Also here, because the staff page and the scripts share them: reading a list of questions
(txt or CSV), the batch run and its CSV/HTML reports, the regression cases file
(tests/regression/cases.yml), and the list of visitor messages the assistant could not answer
(read from the tracker store).
"""
import asyncio
import csv
import datetime as dt
import fcntl
import html
import io
import json
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Tuple

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_DIR = ROOT / "domain"
CONFIG_FILE = ROOT / "config.yml"
CASES_FILE = ROOT / "tests" / "regression" / "cases.yml"
REPORTS_DIR = ROOT / "reports"

STAFF_SENDER_PREFIX = "staff-"
LEVELS = ("emergency", "urgent", "handoff")
FALLBACK_INTENT = "nlu_fallback"
# Replies that mean "the assistant had no answer" (the page does not say / not understood).
NO_ANSWER_RESPONSES = {"utter_no_info": "not on the page", "utter_default": "not understood"}
FALLBACK_ACTIONS = {"action_default_fallback"}
MAX_QUESTION_CHARS = 1000
MAX_BATCH_QUESTIONS = 500
RUNNERS_UP = 3

# The report's columns, in order (CSV header and HTML table).
COLUMNS = ("question", "reply", "intent", "confidence", "escalation level", "source section",
           "low confidence", "result")


class RasaError(Exception):
    """The Rasa server could not be asked. The message is safe to show (no URL, no token)."""


# ---------------------------------------------------------------------------------------------
# What the project's files say: page sections of responses, the fallback threshold, intents
# ---------------------------------------------------------------------------------------------

def _domain_files(domain_dir: Path) -> List[Path]:
    return sorted(Path(domain_dir).glob("*.yml")) + sorted(Path(domain_dir).glob("*.yaml"))


@lru_cache(maxsize=8)
def load_sources(domain_dir: Path = DOMAIN_DIR) -> Dict[str, Optional[str]]:
    """utter_action -> the page section its answer comes from (metadata.source), or None."""
    sources: Dict[str, Optional[str]] = {}
    for path in _domain_files(domain_dir):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, variations in (data.get("responses") or {}).items():
            source = None
            for variation in variations or []:
                meta = (variation or {}).get("metadata") or {}
                if meta.get("source"):
                    source = str(meta["source"])
                    break
            sources[name] = source
    return sources


@lru_cache(maxsize=8)
def load_intents(domain_dir: Path = DOMAIN_DIR) -> Tuple[str, ...]:
    """Every intent of the domain (what a regression case may expect), plus nlu_fallback."""
    intents: List[str] = []
    for path in _domain_files(domain_dir):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("intents") or []:
            name = next(iter(entry)) if isinstance(entry, dict) else str(entry)
            if name not in intents:
                intents.append(name)
    intents.append(FALLBACK_INTENT)
    return tuple(intents)


@lru_cache(maxsize=8)
def fallback_threshold(config_file: Path = CONFIG_FILE) -> Optional[float]:
    """The FallbackClassifier's threshold in config.yml (None if the pipeline has none)."""
    config = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
    for component in config.get("pipeline") or []:
        if isinstance(component, dict) and component.get("name") == "FallbackClassifier":
            if "threshold" in component:
                return float(component["threshold"])
    return None


# ---------------------------------------------------------------------------------------------
# Talking to Rasa
# ---------------------------------------------------------------------------------------------

def new_sender() -> str:
    return f"{STAFF_SENDER_PREFIX}{uuid.uuid4().hex}"


class RasaClient:
    """The three calls, over an aiohttp session the caller owns. `token` is RASA_AUTH_TOKEN.

    `rasa_url` is where visitors' messages go (the REST channel; in production the public nginx
    address), `api_url` where the token-guarded HTTP API answers (in production a Rasa process's
    internal address: nginx does not pass the API on); by default the same."""

    def __init__(self, session: aiohttp.ClientSession, rasa_url: str, token: str,
                 api_url: Optional[str] = None, timeout_s: float = 45.0):
        if not token:
            raise RasaError("The Rasa API token (RASA_AUTH_TOKEN) is not set.")
        self.session = session
        self.rasa_url = rasa_url.rstrip("/")
        self.api_url = (api_url or rasa_url).rstrip("/")
        self._token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _call(self, what: str, method: str, path: str, *, token: bool,
                    body: Optional[dict] = None) -> Any:
        params = {"token": self._token} if token else None
        base = self.api_url if token else self.rasa_url
        try:
            async with self.session.request(method, base + path, params=params,
                                            json=body, timeout=self.timeout) as response:
                if response.status >= 400:
                    raise RasaError(f"The assistant answered {what} with HTTP {response.status}.")
                return await response.json(content_type=None)
        except RasaError:
            raise
        except asyncio.TimeoutError:
            raise RasaError(f"The assistant took too long to answer ({what}).") from None
        except (aiohttp.ClientError, ValueError) as error:
            # Never str(error): aiohttp's messages can contain the URL, and so the token.
            raise RasaError(f"The assistant could not be reached ({what}: "
                            f"{type(error).__name__}).") from None

    async def parse(self, text: str) -> Dict[str, Any]:
        return await self._call("the parse request", "POST", "/model/parse", token=True,
                                body={"text": text})

    async def send(self, sender: str, text: str) -> List[Dict[str, Any]]:
        reply = await self._call("the message", "POST", "/webhooks/rest/webhook", token=False,
                                 body={"sender": sender, "message": text})
        return reply if isinstance(reply, list) else []

    async def tracker(self, sender: str) -> Dict[str, Any]:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", sender):
            raise RasaError("Invalid conversation id.")
        return await self._call("the conversation request", "GET",
                                f"/conversations/{sender}/tracker", token=True)


# ---------------------------------------------------------------------------------------------
# Describing a reply
# ---------------------------------------------------------------------------------------------

def _clean_reason(value: Any) -> Optional[str]:
    text = str(value).strip() if value is not None else ""
    return None if text in ("", "None", "null", "{urgency_reason}") else text


def visitor_messages(reply: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The REST reply as the widget shows it: text, quick-reply buttons, escalation call box."""
    out = []
    for message in reply:
        if not isinstance(message, dict):
            continue
        item: Dict[str, Any] = {}
        if isinstance(message.get("text"), str) and message["text"].strip():
            item["text"] = message["text"]
        buttons = [{"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                   for b in message.get("buttons") or [] if isinstance(b, dict)]
        if buttons:
            item["buttons"] = buttons
        custom = message.get("custom")
        if isinstance(custom, dict) and custom.get("type") == "escalation":
            item["escalation"] = {
                "level": custom.get("level") if custom.get("level") in LEVELS else "urgent",
                "phone": str(custom.get("phone") or ""),
                "reason": _clean_reason(custom.get("reason")),
            }
        if item:
            out.append(item)
    return out


def bot_events_of_last_turn(tracker: Dict[str, Any]) -> List[Dict[str, Any]]:
    events = tracker.get("events") or []
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    return [e for e in events[last_user + 1:] if e.get("event") == "bot"]


def describe(question: str, parse: Dict[str, Any], reply: List[Dict[str, Any]],
             bot_events: List[Dict[str, Any]], threshold: Optional[float],
             sources: Dict[str, Optional[str]]) -> Dict[str, Any]:
    """What staff need to know about one question and its reply (pure: no I/O)."""
    intent = parse.get("intent") or {}
    name = intent.get("name")
    confidence = float(intent.get("confidence") or 0.0)
    ranking = [{"name": r.get("name"), "confidence": round(float(r.get("confidence") or 0.0), 4)}
               for r in parse.get("intent_ranking") or [] if r.get("name") != name]
    urgency = parse.get("urgency") if isinstance(parse.get("urgency"), dict) else None

    messages = visitor_messages(reply)
    escalation = None
    for message in messages:
        if "escalation" in message:
            escalation = {"level": message["escalation"]["level"],
                          "reason": message["escalation"]["reason"]}
            break
    if escalation is None and urgency and urgency.get("level") in LEVELS:
        # Understood as urgent, but the reply carried no call box: staff must see both.
        escalation = {"level": urgency["level"], "reason": None, "missing_from_reply": True}
    if escalation is not None:
        escalation["reason"] = _clean_reason((urgency or {}).get("reason")) or escalation["reason"]
        escalation["detected_by"] = "urgency rules" if urgency else "intent classifier"

    responses = [(e.get("metadata") or {}).get("utter_action") for e in bot_events]
    responses = [r for r in responses if r]
    found: List[Dict[str, Optional[str]]] = []
    for response in responses:
        section = sources.get(response)
        if section and all(f["section"] != section for f in found):
            found.append({"response": response, "section": section})

    # The classifier's own best guess (the FallbackClassifier and the urgency rules put their
    # verdicts on top of it): what the threshold is compared with.
    classifier = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    best = max((float(r.get("confidence") or 0.0) for r in classifier), default=confidence)
    low = (name == FALLBACK_INTENT) or (
        threshold is not None and not urgency and best < threshold)

    no_answer = [NO_ANSWER_RESPONSES[r] for r in responses if r in NO_ANSWER_RESPONSES]
    fell_back = (name == FALLBACK_INTENT or bool(no_answer)
                 or any(e.get("name") in FALLBACK_ACTIONS for e in bot_events))
    if escalation is not None:
        result = "escalated"
    elif fell_back:
        result = "fell back"
    elif messages:
        result = "answered"
    else:
        result = "no reply"

    return {
        "question": question,
        "reply": messages,
        "reply_text": "\n".join(m["text"] for m in messages if m.get("text")),
        "intent": {"name": name, "confidence": round(confidence, 4)},
        "ranking": ranking[:RUNNERS_UP],
        "escalation": escalation,
        "responses": responses,
        "sources": found,
        "source": "; ".join(f["section"] for f in found) or None,
        "fell_back": fell_back,
        "fallback_reason": (no_answer[0] if no_answer else
                            "not understood" if fell_back else None),
        "low_confidence": low,
        "best_confidence": round(best, 4),
        "threshold": threshold,
        "result": result,
    }


async def check_question(client: RasaClient, question: str, sender: Optional[str] = None,
                         threshold: Optional[float] = None,
                         sources: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, Any]:
    """Asks `question` (as `sender`, or a new throwaway visitor) and describes the reply."""
    question = question.strip()
    if not question:
        raise ValueError("The question is empty.")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"The question is longer than {MAX_QUESTION_CHARS} characters.")
    sender = sender or new_sender()
    if not sender.startswith(STAFF_SENDER_PREFIX):
        raise ValueError("Staff test conversations must use a staff- sender id.")
    parse = await client.parse(question)
    reply = await client.send(sender, question)
    tracker = await client.tracker(sender)
    return describe(question, parse, reply, bot_events_of_last_turn(tracker),
                    fallback_threshold() if threshold is None else threshold,
                    load_sources() if sources is None else sources)


def ask_sync(rasa_url: str, token: str, question: str, sender: Optional[str] = None,
             api_url: Optional[str] = None) -> Dict[str, Any]:
    """check_question for synchronous callers (tests, scripts)."""
    async def run() -> Dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            return await check_question(RasaClient(session, rasa_url, token, api_url), question,
                                        sender)
    return asyncio.run(run())


# ---------------------------------------------------------------------------------------------
# Batches: reading questions, running them, reporting
# ---------------------------------------------------------------------------------------------

def read_questions(text: str, filename: str = "questions.txt") -> List[str]:
    """Questions from a text file (one a line; blank lines and lines starting with # skipped) or
    a CSV with a `question` column (any letter case; the first column if none is so named)."""
    text = text.lstrip("\ufeff")
    is_csv = filename.lower().endswith(".csv")
    if is_csv:
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            return []
        header = [h.strip().lower() for h in rows[0]]
        if "question" in header:
            column, body = header.index("question"), rows[1:]
        else:
            raise ValueError("The CSV file has no 'question' column in its first row.")
        questions = [row[column] if column < len(row) else "" for row in body]
    else:
        questions = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    questions = [" ".join(q.split()) for q in questions]
    questions = [q for q in questions if q]
    too_long = [q for q in questions if len(q) > MAX_QUESTION_CHARS]
    if too_long:
        raise ValueError(f"{len(too_long)} question(s) are longer than {MAX_QUESTION_CHARS} "
                         "characters.")
    if len(questions) > MAX_BATCH_QUESTIONS:
        raise ValueError(f"At most {MAX_BATCH_QUESTIONS} questions at a time "
                         f"(the file has {len(questions)}).")
    return questions


async def run_batch(client: RasaClient, questions: List[str], concurrency: int = 4,
                    progress: Optional[Callable[[int, int, Dict[str, Any]], Any]] = None
                    ) -> List[Dict[str, Any]]:
    """Every question as a new visitor; results in the questions' order. A question that could
    not be asked gets a row with `error` set instead of stopping the batch."""
    results: List[Optional[Dict[str, Any]]] = [None] * len(questions)
    semaphore = asyncio.Semaphore(concurrency)
    done = 0
    threshold, sources = fallback_threshold(), load_sources()

    async def one(i: int, question: str) -> None:
        nonlocal done
        async with semaphore:
            try:
                row = await check_question(client, question, threshold=threshold, sources=sources)
            except (RasaError, ValueError) as error:
                row = error_row(question, str(error))
        results[i] = row
        done += 1
        if progress is not None:
            outcome = progress(done, len(questions), row)
            if asyncio.iscoroutine(outcome):
                await outcome

    await asyncio.gather(*(one(i, q) for i, q in enumerate(questions)))
    return [r for r in results if r is not None]


def error_row(question: str, message: str) -> Dict[str, Any]:
    return {"question": question, "reply": [], "reply_text": "", "intent": {"name": None,
            "confidence": 0.0}, "ranking": [], "escalation": None, "responses": [], "sources": [],
            "source": None, "fell_back": False, "fallback_reason": None, "low_confidence": False,
            "best_confidence": 0.0, "threshold": None, "result": "error", "error": message}


def summarize(rows: List[Dict[str, Any]]) -> Dict[str, int]:
    return {
        "questions": len(rows),
        "answered": sum(r["result"] == "answered" for r in rows),
        "fell back": sum(r["result"] == "fell back" for r in rows),
        "escalated": sum(r["result"] == "escalated" for r in rows),
        "low confidence": sum(bool(r["low_confidence"]) for r in rows),
        "errors": sum(r["result"] in ("error", "no reply") for r in rows),
    }


def summary_line(summary: Dict[str, int]) -> str:
    line = (f"{summary['questions']} questions: {summary['answered']} answered, "
            f"{summary['fell back']} fell back, {summary['escalated']} escalated, "
            f"{summary['low confidence']} low confidence")
    return line + (f", {summary['errors']} errors" if summary["errors"] else "")


def report_row(row: Dict[str, Any]) -> Dict[str, str]:
    """One report line, the columns in COLUMNS."""
    reply = row["reply_text"]
    if row.get("error"):
        reply = f"(error: {row['error']})"
    return {
        "question": row["question"],
        "reply": reply,
        "intent": row["intent"]["name"] or "",
        "confidence": f"{row['intent']['confidence']:.2f}",
        "escalation level": (row["escalation"] or {}).get("level") or "",
        "source section": row["source"] or "",
        "low confidence": "yes" if row["low_confidence"] else "no",
        "result": row["result"],
    }


def _spreadsheet_safe(value: str) -> str:
    # A cell starting with = + - @ is run as a formula by spreadsheet programs.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def report_csv(rows: List[Dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        line = report_row(row)
        writer.writerow({k: (v if k == "confidence" else _spreadsheet_safe(v))
                         for k, v in line.items()})
    return out.getvalue()


_REPORT_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2rem;color:#1b1b1b}
h1{font-size:1.5rem}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #c5d0da;padding:.5rem;text-align:left;vertical-align:top}
th{background:#e6f0f7}td.reply{white-space:pre-line;max-width:40rem}
tr.escalated td{background:#fff4e0}tr.fellback td{background:#f4f4f4}
.low{color:#8a5300;font-weight:700}.summary{font-size:1.1rem}
"""


def report_html(rows: List[Dict[str, Any]], title: str = "Reply test report",
                generated: Optional[dt.datetime] = None) -> str:
    generated = generated or dt.datetime.now().astimezone()
    esc = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    head = "".join(f"<th scope=\"col\">{esc(c)}</th>" for c in COLUMNS)
    body = []
    for row in rows:
        line = report_row(row)
        css = {"escalated": "escalated", "fell back": "fellback"}.get(row["result"], "")
        cells = []
        for column in COLUMNS:
            value = esc(line[column])
            if column == "reply":
                cells.append(f'<td class="reply">{value}</td>')
            elif column == "low confidence" and row["low_confidence"]:
                cells.append(f'<td class="low">{value}</td>')
            else:
                cells.append(f"<td>{value}</td>")
        body.append(f'<tr class="{css}">' + "".join(cells) + "</tr>")
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{_REPORT_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        f"<p>Made {esc(generated.strftime('%Y-%m-%d %H:%M'))}. "
        f"Low confidence: the assistant's best guess is below the fallback threshold "
        f"({esc(fallback_threshold())}).</p>"
        f"<p class=\"summary\">{esc(summary_line(summarize(rows)))}.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>\n"
    )


def write_reports(rows: List[Dict[str, Any]], out_dir: Path = REPORTS_DIR,
                  stem: Optional[str] = None) -> Tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or "try-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    csv_path, html_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.html"
    csv_path.write_text(report_csv(rows), encoding="utf-8")
    html_path.write_text(report_html(rows), encoding="utf-8")
    return csv_path, html_path


# ---------------------------------------------------------------------------------------------
# Regression cases (tests/regression/cases.yml)
# ---------------------------------------------------------------------------------------------

CASES_HEADER = """\
# Regression cases: questions and what the assistant must make of them.
#   {question, intent}: the NLU must understand the question as this intent (POST /model/parse)
#   {question, level}:  the reply must escalate at this level (emergency, urgent or handoff)
# `make test` checks every case end to end (tests/e2e/test_regression.py).
# Add cases from the staff page (/staff/, "Save as test") or with
#   make save-test Q="how long is the trial" INTENT=ask_trial
#   make save-test Q="my pump is alarming right now" LEVEL=urgent
"""


def cases_file() -> Path:
    """The cases file: $REGRESSION_CASES_FILE, or tests/regression/cases.yml."""
    return Path(os.environ.get("REGRESSION_CASES_FILE") or CASES_FILE)


def load_cases(path: Optional[Path] = None) -> List[Dict[str, str]]:
    path = Path(path or cases_file())
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise ValueError(f"{path} must be a YAML list of cases")
    return [c for c in data if isinstance(c, dict)]


def validate_case(question: Any, intent: Any = None, level: Any = None,
                  domain_dir: Path = DOMAIN_DIR) -> Dict[str, str]:
    question = " ".join(str(question or "").split())
    if not question:
        raise ValueError("Type the question to save.")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"The question is longer than {MAX_QUESTION_CHARS} characters.")
    intent, level = (str(intent).strip() if intent else ""), (str(level).strip() if level else "")
    if bool(intent) == bool(level):
        raise ValueError("Give either the expected intent or the expected escalation level.")
    if intent:
        if intent not in load_intents(domain_dir):
            raise ValueError(f"Unknown intent {intent!r}.")
        return {"question": question, "intent": intent}
    if level not in LEVELS:
        raise ValueError(f"The escalation level must be one of: {', '.join(LEVELS)}.")
    return {"question": question, "level": level}


def _case_line(case: Dict[str, str]) -> str:
    return "- " + yaml.safe_dump(dict(case), default_flow_style=True, sort_keys=False,
                                 allow_unicode=True, width=100_000).strip() + "\n"


def save_case(question: Any, intent: Any = None, level: Any = None,
              path: Optional[Path] = None) -> Tuple[str, Dict[str, str]]:
    """Adds a case (or changes the expectation of a saved question). Returns (status, case),
    status "added", "updated" or "unchanged". The file's comment header is kept."""
    case = validate_case(question, intent, level)
    path = Path(path or cases_file())
    path.parent.mkdir(parents=True, exist_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)  # one writer at a time (staff page, make save-test)
        text = path.read_text(encoding="utf-8") if path.exists() else CASES_HEADER
        cases = load_cases(path)
        key = case["question"].casefold()
        same = [i for i, c in enumerate(cases) if str(c.get("question", "")).casefold() == key]
        if same and all(cases[i] == case for i in same):
            return "unchanged", case
        if not same:
            # Appending keeps everything else in the file exactly as it was.
            new_text = text + ("" if text.endswith("\n") or not text else "\n") + _case_line(case)
            status = "added"
        else:
            header = "".join(line for line in _leading_comments(text))
            cases = [c for i, c in enumerate(cases) if i not in same[1:]]
            cases[same[0]] = case
            new_text = header + "".join(_case_line(c) for c in cases)
            status = "updated"
        _write_atomically(path, new_text)
        return status, case
    finally:
        fcntl.flock(directory, fcntl.LOCK_UN)
        os.close(directory)


def _leading_comments(text: str) -> Iterable[str]:
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            return
        yield line


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# What visitors asked that the assistant could not answer (the tracker store)
# ---------------------------------------------------------------------------------------------

def tracker_db_url() -> Any:
    """Where the conversations are: $TRACKER_DB_URL (any SQLAlchemy URL); else the production
    profile's PostgreSQL when its settings (TRACKER_DB_HOST, ...) are in the environment (the
    launcher gives them to every process); else the SQLite file $TRACKER_SQLITE_DB. None if
    none is set. A str, or an sqlalchemy URL object (never shown: it can hold a password)."""
    url = os.environ.get("TRACKER_DB_URL", "").strip()
    if url:
        return url
    if os.environ.get("TRACKER_DB_HOST"):
        from stack import production
        try:
            return production.tracker_db_url(os.environ)
        except (KeyError, ValueError):
            pass
    db = os.environ.get("TRACKER_SQLITE_DB", "").strip()
    return f"sqlite:///{db}" if db else None


@dataclass
class Unanswered:
    text: str
    timestamp: float
    why: List[str]
    intent: Optional[str]
    confidence: Optional[float]

    def as_dict(self) -> Dict[str, Any]:
        when = dt.datetime.fromtimestamp(self.timestamp, dt.timezone.utc)
        return {"text": self.text, "timestamp": self.timestamp,
                "when": when.isoformat(timespec="seconds"), "why": self.why,
                "intent": self.intent, "confidence": self.confidence}


_ENGINES: Dict[str, Any] = {}


def _engine(url: Any):
    import sqlalchemy as sa
    if url not in _ENGINES:
        _ENGINES[url] = sa.create_engine(url, future=True, pool_pre_ping=True)
    return _ENGINES[url]


def unanswered_messages(url: Any = None, threshold: Optional[float] = None,
                        limit: int = 50, scan: int = 1000) -> List[Dict[str, Any]]:
    """Recent visitor messages that fell back (nlu_fallback, or an utter_no_info / utter_default
    reply) or whose intent confidence was below the fallback threshold; newest first. Staff test
    conversations (staff-*) are skipped; no sender ids are returned. Blocking (SQLAlchemy):
    call it in a thread from async code."""
    import sqlalchemy as sa
    url = url or tracker_db_url()
    if not url:
        return []
    if isinstance(url, str) and url.startswith("sqlite:///") and \
            not Path(url[len("sqlite:///"):]).exists():
        return []  # no conversation yet (and don't create an empty database)
    threshold = fallback_threshold() if threshold is None else threshold
    prefix = STAFF_SENDER_PREFIX + "%"
    try:
        with _engine(url).connect() as connection:
            users = connection.execute(sa.text(
                "SELECT id, sender_id, timestamp FROM events "
                "WHERE type_name = 'user' AND sender_id NOT LIKE :prefix "
                "ORDER BY timestamp DESC, id DESC LIMIT :scan"),
                {"prefix": prefix, "scan": scan}).fetchall()
            if not users:
                return []
            oldest = min(u.timestamp for u in users)
            events = connection.execute(sa.text(
                "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data "
                "FROM events WHERE type_name IN ('user', 'action') "
                "AND sender_id NOT LIKE :prefix AND timestamp >= :oldest "
                "ORDER BY sender_id, timestamp, id"),
                {"prefix": prefix, "oldest": oldest}).fetchall()
    except sa.exc.SQLAlchemyError:
        # No events table yet, or the database is unreachable: nothing to show.
        return []

    found: List[Unanswered] = []
    current: Optional[Unanswered] = None
    current_sender = None

    def finish() -> None:
        if current is not None and current.why:
            found.append(current)

    for event in events:
        if event.sender_id != current_sender:
            finish()
            current, current_sender = None, event.sender_id
        if event.type_name == "user":
            finish()
            current = _user_message(event, threshold)
        elif current is not None and event.action_name:
            if event.action_name in NO_ANSWER_RESPONSES:
                why = NO_ANSWER_RESPONSES[event.action_name]
                if why not in current.why:
                    current.why.append(why)
            elif event.action_name in FALLBACK_ACTIONS and "not understood" not in current.why:
                current.why.append("not understood")
    finish()
    found.sort(key=lambda u: u.timestamp, reverse=True)
    return [u.as_dict() for u in found[:limit]]


def _user_message(event: Any, threshold: Optional[float]) -> Optional[Unanswered]:
    try:
        data = json.loads(event.data or "{}")
    except ValueError:
        data = {}
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or text.startswith("/"):
        return None  # button clicks (/intent payloads) always "understand"
    parse = data.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name") or event.intent_name
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    confidence = max((float(r.get("confidence") or 0.0) for r in ranking),
                     default=float((parse.get("intent") or {}).get("confidence") or 0.0))
    why: List[str] = []
    if intent == FALLBACK_INTENT:
        why.append("not understood")
    elif threshold is not None and not parse.get("urgency") and confidence < threshold:
        why.append("low confidence")
    return Unanswered(text=text, timestamp=float(event.timestamp or 0.0), why=why,
                      intent=intent, confidence=round(confidence, 4))
