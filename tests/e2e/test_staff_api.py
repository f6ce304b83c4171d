"""The staff reply tester (web/staff.py) against the running servers (the `stack` fixture)."""
import asyncio
import threading
import time
import uuid

import pytest
import requests
import yaml
from aiohttp import web

from web import reply_check as rc
from web import staff as staff_app
from web.app import create_app

ENDPOINTS = [
    ("GET", "/staff/api/meta"), ("POST", "/staff/api/ask"), ("POST", "/staff/api/reset"),
    ("GET", "/staff/api/cases"), ("POST", "/staff/api/cases"), ("GET", "/staff/api/unanswered"),
    ("POST", "/staff/api/batch"), ("GET", f"/staff/api/batch/{'0' * 32}"),
    ("GET", f"/staff/api/batch/{'0' * 32}/report.csv"), ("GET", "/staff/api/nothing-here"),
]
PAGES = ["/staff/", "/staff", "/staff/anything"]


class Recorder(requests.Session):
    """A browser's view: every response body and header this session received."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", 60)
        response = super().request(*args, **kwargs)
        for r in [*response.history, response]:
            self.seen.append(r.url + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
                             + "\n" + r.text)
        return response


SEEN = []  # everything every staff session of this module received


def login(base, password):
    session = Recorder()
    SEEN.append(session.seen)
    response = session.post(f"{base}/staff/login", data={"password": password},
                            allow_redirects=False)
    return session, response


@pytest.fixture(scope="module")
def staff(stack):
    session, response = login(stack.web_url, stack.secrets["STAFF_PASSWORD"])
    assert response.status_code == 303
    session.base = stack.web_url
    return session


def ask(staff, question, conversation=False):
    response = staff.post(f"{staff.base}/staff/api/ask",
                          json={"question": question, "conversation": conversation})
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------------------------------
# Login
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_api_needs_a_login(stack, method, path):
    response = requests.request(method, stack.web_url + path, json={"question": "hi"}, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"error": "Please log in."}


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_the_login(stack, path):
    response = requests.get(stack.web_url + path, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/login"


def test_logout_needs_a_login(stack):
    response = requests.post(f"{stack.web_url}/staff/logout", allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["Location"] == "/staff/login"


def test_forged_cookie_is_refused(stack):
    forged = {staff_app.COOKIE: f"abc.{int(time.time()) + 3600}.{'0' * 64}"}
    response = requests.get(f"{stack.web_url}/staff/api/meta", cookies=forged, timeout=10)
    assert response.status_code == 401


def test_login_page(stack):
    response = requests.get(f"{stack.web_url}/staff/login", timeout=10)
    assert response.status_code == 200
    assert 'name="password"' in response.text and 'type="password"' in response.text
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "connect-src 'self';" in csp  # the staff pages talk to this server only
    assert response.headers["Cache-Control"] == "no-store"


def test_wrong_password_is_refused(stack):
    started = time.monotonic()
    session, response = login(stack.web_url, "not-the-password")
    assert response.status_code == 401
    assert 'name="password"' in response.text and "not right" in response.text
    assert time.monotonic() - started >= 0.5  # slowed down against guessing
    assert staff_app.COOKIE not in session.cookies
    assert session.get(f"{stack.web_url}/staff/api/meta").status_code == 401


def test_login_sets_a_strict_httponly_cookie(stack):
    session, response = login(stack.web_url, stack.secrets["STAFF_PASSWORD"])
    assert response.status_code == 303 and response.headers["Location"] == "/staff/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{staff_app.COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/staff"):
        assert attribute in cookie
    page = session.get(f"{stack.web_url}/staff/")
    assert page.status_code == 200 and "Reply tester" in page.text
    assert '<script src="/static/staff.js"' in page.text
    # logging out ends the session, cookie or not
    old = session.cookies.get(staff_app.COOKIE)
    session.post(f"{stack.web_url}/staff/logout")
    assert requests.get(f"{stack.web_url}/staff/api/meta", cookies={staff_app.COOKIE: old},
                        timeout=10).status_code == 401


def test_cross_site_posts_are_refused(staff):
    response = staff.post(f"{staff.base}/staff/api/reset", json={},
                          headers={"Origin": "https://evil.example"})
    assert response.status_code == 403


# ---------------------------------------------------------------------------------------------
# Asking
# ---------------------------------------------------------------------------------------------

def test_meta(staff):
    data = staff.get(f"{staff.base}/staff/api/meta").json()
    assert data["threshold"] == rc.fallback_threshold()
    assert "ask_trial" in data["intents"] and data["levels"] == ["emergency", "urgent", "handoff"]


def test_ask_describes_the_reply(staff):
    result = ask(staff, "how long is the trial")
    assert "24-48 hours" in result["reply_text"]
    assert any(m.get("buttons") for m in result["reply"])
    assert result["intent"]["name"] == "ask_trial" and 0 < result["intent"]["confidence"] <= 1
    assert len(result["ranking"]) == 3
    assert all(r["name"] != "ask_trial" for r in result["ranking"])
    assert result["escalation"] is None
    assert result["source"] == "How does this procedure work?"
    assert result["low_confidence"] is False and result["threshold"] == rc.fallback_threshold()
    assert result["result"] == "answered"
    assert "sender" not in result


def test_ask_an_urgent_question(staff):
    result = ask(staff, "my pump is alarming right now")
    assert result["escalation"]["level"] == "urgent" and result["escalation"]["reason"]
    box = [m["escalation"] for m in result["reply"] if "escalation" in m]
    assert box and box[0]["phone"].startswith("+")
    assert result["result"] == "escalated"


def test_ask_gibberish_is_low_confidence(staff):
    result = ask(staff, "xqzv blorp wibble")
    assert result["low_confidence"] is True and result["fell_back"] is True
    assert result["best_confidence"] < result["threshold"]


def test_ask_refuses_bad_input(staff):
    assert staff.post(f"{staff.base}/staff/api/ask", json={"question": " "}).status_code == 400
    assert staff.post(f"{staff.base}/staff/api/ask",
                      json={"question": "x" * 1001}).status_code == 400
    assert staff.post(f"{staff.base}/staff/api/ask", data="question=hi").status_code == 415


def test_conversation_mode_keeps_context(staff):
    staff.post(f"{staff.base}/staff/api/reset", json={})
    first = ask(staff, "what is the trial", conversation=True)
    assert first["intent"]["name"] == "ask_trial" and first["turn"] == 1
    follow_up = ask(staff, "how long does it take", conversation=True)
    assert "24-48 hours" in follow_up["reply_text"] and follow_up["turn"] == 2
    # without conversation mode the same follow-up has no context
    alone = ask(staff, "how long does it take")
    assert "24-48 hours" not in alone["reply_text"]


def test_reset_starts_over(staff):
    ask(staff, "what is the trial", conversation=True)
    response = staff.post(f"{staff.base}/staff/api/reset", json={})
    assert response.status_code == 200 and response.json()["ok"] is True
    after = ask(staff, "how long does it take", conversation=True)
    assert after["turn"] == 1 and "24-48 hours" not in after["reply_text"]


# ---------------------------------------------------------------------------------------------
# A list of questions
# ---------------------------------------------------------------------------------------------

def test_batch_with_progress(staff, stack):
    text = "how long is the trial\nhow much does the pump cost\nmy pump is alarming right now\n"
    response = staff.post(f"{staff.base}/staff/api/batch",
                          files={"file": ("questions.txt", text.encode(), "text/plain")})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["total"] == 3
    deadline = time.monotonic() + 120
    while True:
        status = staff.get(f"{staff.base}/staff/api/batch/{job['job']}").json()
        assert 0 <= status["done"] <= 3
        if status["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status["status"] == "done" and status["done"] == 3
    assert status["summary"] == {"questions": 3, "answered": 1, "fell back": 1, "escalated": 1,
                                 "low confidence": 0, "errors": 0}
    assert [r["question"] for r in status["rows"]] == text.split("\n")[:3]
    report = staff.get(f"{staff.base}/staff/api/batch/{job['job']}/report.csv")
    assert report.status_code == 200 and "attachment" in report.headers["Content-Disposition"]
    assert report.text.lstrip("\ufeff").startswith(",".join(rc.COLUMNS))
    page = staff.get(f"{staff.base}/staff/api/batch/{job['job']}/report.html")
    assert page.status_code == 200 and "24-48 hours" in page.text
    # another staff member's session can't read it
    other, _ = login(staff.base, stack.secrets["STAFF_PASSWORD"])
    assert other.get(f"{staff.base}/staff/api/batch/{job['job']}").status_code == 404


def test_batch_refuses_bad_files(staff):
    bad = staff.post(f"{staff.base}/staff/api/batch",
                     files={"file": ("q.csv", b"text\nhello\n", "text/csv")})
    assert bad.status_code == 400 and "question" in bad.json()["error"]
    empty = staff.post(f"{staff.base}/staff/api/batch", files={"file": ("q.txt", b"\n\n")})
    assert empty.status_code == 400


# ---------------------------------------------------------------------------------------------
# What visitors asked that the assistant could not answer
# ---------------------------------------------------------------------------------------------

def test_unanswered_lists_visitor_fallbacks_without_sender_ids(staff, chat):
    marker = uuid.uuid4().hex[:8]
    visitor_question = f"who won the football game {marker}"
    chat(visitor_question)  # a visitor, through the REST channel
    staff_question = f"who won the cricket match {marker}"
    ask(staff, staff_question)  # a staff test: never listed
    response = staff.get(f"{staff.base}/staff/api/unanswered")
    assert response.status_code == 200
    items = response.json()["items"]
    texts = [i["text"] for i in items]
    assert visitor_question in texts and staff_question not in texts
    assert texts.index(visitor_question) == 0  # newest first
    assert items[0]["why"]
    assert len(items) <= 50
    assert chat.sender not in response.text and "staff-" not in response.text
    assert all("sender" not in key for item in items for key in item)


# ---------------------------------------------------------------------------------------------
# Save as test (an in-process web app on a temporary copy of the cases file)
# ---------------------------------------------------------------------------------------------

class Served:
    def __init__(self, app):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)

        async def start():
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", 0).start()
            return self.runner.addresses[0][1]

        self.url = f"http://127.0.0.1:{asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)}"

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def site_with_temp_cases(stack, tmp_path, monkeypatch):
    cases = tmp_path / "cases.yml"
    cases.write_bytes(rc.CASES_FILE.read_bytes())
    for name in ("STAFF_PASSWORD", "RASA_AUTH_TOKEN"):
        monkeypatch.setenv(name, stack.secrets[name])
    monkeypatch.setenv("RASA_API_URL", stack.rasa_api_url)
    monkeypatch.setenv("REGRESSION_CASES_FILE", str(cases))
    served = Served(create_app(stack.rasa_url))
    yield served.url, cases
    served.stop()


def test_save_as_test_round_trip(site_with_temp_cases, stack):
    base, cases = site_with_temp_cases
    real_before = rc.CASES_FILE.read_bytes()
    session, response = login(base, stack.secrets["STAFF_PASSWORD"])
    assert response.status_code == 303
    before = len(rc.load_cases(cases))
    question = f"how many hours is the trial {uuid.uuid4().hex[:6]}"
    url = f"{base}/staff/api/cases"

    added = session.post(url, json={"question": question, "intent": "ask_trial"})
    assert added.status_code == 201 and added.json()["status"] == "added"
    again = session.post(url, json={"question": question, "intent": "ask_trial"})
    assert again.json()["status"] == "unchanged"
    urgent = session.post(url, json={"question": "my pump is beeping " + question, "level": "urgent"})
    assert urgent.status_code == 201

    listed = session.get(url).json()["cases"]
    assert {"question": question, "intent": "ask_trial"} in listed
    text = cases.read_text()
    assert text.startswith("# Regression cases")
    assert yaml.safe_load(text) == listed and len(listed) == before + 2

    for bad in ({"question": question, "intent": "ask_nonsense"}, {"question": question},
                {"question": question, "intent": "ask_trial", "level": "urgent"},
                {"question": "", "level": "urgent"}, {"question": question, "level": "soon"}):
        assert session.post(url, json=bad).status_code == 400
    assert rc.CASES_FILE.read_bytes() == real_before  # the real file was not touched

    # what was saved passes the regression check (the same ask the regression test does)
    result = session.post(f"{base}/staff/api/ask", json={"question": question}).json()
    assert result["intent"]["name"] == "ask_trial"


# ---------------------------------------------------------------------------------------------
# The Rasa token stays on the server
# ---------------------------------------------------------------------------------------------

def test_the_rasa_token_never_reaches_the_browser(staff, stack):
    token = stack.secrets["RASA_AUTH_TOKEN"]
    # a few more responses: pages, scripts, errors
    for path in ("/staff/", "/staff/login", "/static/staff.js", "/staff/api/meta",
                 "/staff/api/unanswered", "/staff/api/cases", "/", "/staff/api/nope"):
        staff.get(staff.base + path)
    staff.post(f"{staff.base}/staff/api/ask", json={"question": "/nonexistent_intent"})
    seen = [text for session in SEEN for text in session]
    assert len(seen) > 30
    assert not [text[:200] for text in seen if token in text]
