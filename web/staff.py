"""The call-center "reply tester" at /staff/: try questions on the assistant and see why it
answered as it did. Picked up by web/app.py (EXTENSIONS) through `setup_staff(app)`.

Pages (HTML):
  GET  /staff/          the tester (login required; otherwise a redirect to /staff/login)
  GET  /staff/login     the login form;  POST /staff/login checks STAFF_PASSWORD
  POST /staff/logout
API (JSON; login required, otherwise 401):
  GET  /staff/api/meta                     fallback threshold, intents, escalation levels
  POST /staff/api/ask      {question, conversation}   the reply and how it was understood
  POST /staff/api/reset                    start the conversation-mode conversation over
  GET  /staff/api/cases                    the saved regression cases
  POST /staff/api/cases    {question, intent | level}  save a question as a test
  GET  /staff/api/unanswered               recent visitor messages the assistant could not answer
  POST /staff/api/batch    (multipart "file": .txt or .csv)  start a batch; -> {job, total}
  GET  /staff/api/batch/{job}              its progress, and the rows when done
  GET  /staff/api/batch/{job}/report.csv | report.html

Security: the password comes from the STAFF_PASSWORD env var only (no default: without it
nobody can log in). Sessions are random ids in a signed, HttpOnly, SameSite=Strict cookie
(HMAC-SHA256 with a random key made when the process starts, so a restart logs staff out) and
are also kept server-side, so logging out ends them. Wrong passwords are slowed down and
limited per client address. The Rasa token (RASA_AUTH_TOKEN) stays in this process: the
browser only ever talks to /staff/api/*. All /staff responses carry their own CSP (no inline
scripts or styles, connections to this server only) and are not cached.
"""
import asyncio
import csv
import hashlib
import hmac
import html
import logging
import os
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Deque, Dict, List, Optional
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from web import reply_check as rc
from web.app import RASA_URL, TEMPLATES, origin_of

logger = logging.getLogger(__name__)

COOKIE = "staff_session"
SESSION_TTL_S = 8 * 3600
MAX_SESSIONS = 500
LOGIN_DELAY_S = 1.0            # every wrong password waits this long
MAX_FAILURES = 10              # wrong passwords per client address ...
FAILURE_WINDOW_S = 300         # ... in this many seconds, then logins are refused for a while
MAX_UPLOAD_BYTES = 1_000_000
MAX_JOBS = 20

STAFF_CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
# Downloaded reports are self-contained HTML with their own <style>; nothing else may run.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@dataclass
class Session:
    expires: float
    conversation: Optional[str] = None  # the staff- sender of conversation mode
    turns: int = 0


@dataclass
class Job:
    owner: str
    total: int
    filename: str
    done: int = 0
    status: str = "running"  # running, done, failed
    error: Optional[str] = None
    rows: List[Dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    task: Optional[asyncio.Task] = None


@dataclass
class StaffState:
    password: Optional[str]
    rasa_token: Optional[str]
    cases_file: Path
    tracker_db_url: Any
    # The HTTP API's address when it is not the REST channel's (production: RASA_API_URL).
    rasa_api_url: Optional[str] = None
    login_delay_s: float = LOGIN_DELAY_S
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    sessions: Dict[str, Session] = field(default_factory=dict)
    failures: Dict[str, Deque[float]] = field(default_factory=dict)
    jobs: Dict[str, Job] = field(default_factory=dict)
    http: Optional[aiohttp.ClientSession] = None

    # ---- sessions ---------------------------------------------------------------------------

    def _sign(self, value: str) -> str:
        return hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        now = time.time()
        for sid in [s for s, v in self.sessions.items() if v.expires < now]:
            del self.sessions[sid]
        while len(self.sessions) >= MAX_SESSIONS:
            del self.sessions[min(self.sessions, key=lambda s: self.sessions[s].expires)]
        sid = secrets.token_urlsafe(24)
        expires = int(now + SESSION_TTL_S)
        self.sessions[sid] = Session(expires=expires)
        value = f"{sid}.{expires}"
        return f"{value}.{self._sign(value)}"

    def session_of(self, request: web.Request) -> Optional[tuple]:
        cookie = request.cookies.get(COOKIE, "")
        parts = cookie.split(".")
        if len(parts) != 3:
            return None
        sid, expires, signature = parts
        if not hmac.compare_digest(self._sign(f"{sid}.{expires}"), signature):
            return None
        session = self.sessions.get(sid)
        if session is None or not expires.isdigit() or int(expires) < time.time():
            return None
        return sid, session

    # ---- logins -----------------------------------------------------------------------------

    def password_ok(self, given: str) -> bool:
        if not self.password:
            return False
        # Digests first: compare_digest then takes the same time whatever the lengths.
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                                   hashlib.sha256(self.password.encode()).digest())

    def locked_out(self, client: str) -> bool:
        recent = self.failures.get(client)
        if not recent:
            return False
        while recent and recent[0] < time.time() - FAILURE_WINDOW_S:
            recent.popleft()
        return len(recent) >= MAX_FAILURES

    def record_failure(self, client: str) -> None:
        if len(self.failures) > 10_000:
            self.failures.clear()
        self.failures.setdefault(client, deque(maxlen=MAX_FAILURES * 2)).append(time.time())

    # ---- Rasa -------------------------------------------------------------------------------

    def client(self, request: web.Request) -> rc.RasaClient:
        if not self.rasa_token:
            raise web.HTTPServiceUnavailable(
                text='{"error": "The assistant\'s API token (RASA_AUTH_TOKEN) is not set on '
                     'the web server."}', content_type="application/json")
        if self.http is None:
            self.http = aiohttp.ClientSession()
        return rc.RasaClient(self.http, request.app[RASA_URL], self.rasa_token,
                             self.rasa_api_url)


STAFF = web.AppKey("staff", StaffState)


# ---------------------------------------------------------------------------------------------
# Guard: everything under /staff needs a session, except the login form
# ---------------------------------------------------------------------------------------------

PUBLIC = {"/staff/login"}


def _is_staff_path(path: str) -> bool:
    return path == "/staff" or path.startswith("/staff/")


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (browsers send Origin on every POST)
    return origin != "null" and urlsplit(origin).netloc == request.host


def _staff_headers(response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", STAFF_CSP)
    # Not "no-referrer" (the rest of the site's): with it, browsers send `Origin: null` even on
    # the staff pages' own POSTs, and the same-origin check could not tell them from others.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Robots-Tag", "noindex, nofollow")


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def redirect(location: str, status: int = 303) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


@web.middleware
async def staff_guard(request: web.Request, handler) -> web.StreamResponse:
    if not _is_staff_path(request.path):
        return await handler(request)
    state = request.app[STAFF]
    api = request.path.startswith("/staff/api/")
    try:
        if request.method not in ("GET", "HEAD") and not _same_origin(request):
            response = _json_error(403, "Cross-site request refused.")
        elif request.path in PUBLIC:
            response = await handler(request)
        else:
            found = state.session_of(request)
            if found is None:
                if api:
                    response = _json_error(401, "Please log in.")
                else:
                    response = redirect("/staff/login", 302)
            else:
                request["staff_sid"], request["staff_session"] = found
                response = await handler(request)
    except web.HTTPException as error:
        _staff_headers(error)
        raise
    _staff_headers(response)
    return response


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------

def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def login_page(message: str = "", status: int = 200) -> web.Response:
    note = f'<p class="st-error" role="alert">{html.escape(message)}</p>' if message else ""
    return web.Response(text=_template("staff_login.html").substitute(message=note),
                        status=status, content_type="text/html", charset="utf-8")


async def login_form(request: web.Request) -> web.StreamResponse:
    if request.app[STAFF].session_of(request) is not None:
        return redirect("/staff/", 302)
    if not request.app[STAFF].password:
        return login_page("Staff login is not set up on this server (STAFF_PASSWORD is missing).",
                          status=503)
    return login_page()


def _client_address(request: web.Request) -> str:
    return request.remote or "unknown"


async def login(request: web.Request) -> web.StreamResponse:
    state = request.app[STAFF]
    client = _client_address(request)
    if not state.password:
        return login_page("Staff login is not set up on this server (STAFF_PASSWORD is missing).",
                          status=503)
    if state.locked_out(client):
        await asyncio.sleep(state.login_delay_s)
        return login_page("Too many wrong passwords. Please wait a few minutes and try again.",
                          status=429)
    try:
        form = await request.post()
    except Exception:  # noqa: BLE001 - an unreadable form is a wrong password
        form = {}
    given = form.get("password", "")
    if not isinstance(given, str) or not state.password_ok(given):
        state.record_failure(client)
        logger.warning("staff.login.failed client=%s", client)
        await asyncio.sleep(state.login_delay_s)
        return login_page("That password is not right. Please try again.", status=401)
    response = redirect("/staff/")
    response.set_cookie(COOKIE, state.new_session(), max_age=SESSION_TTL_S, path="/staff",
                        httponly=True, samesite="Strict", secure=request.secure)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[STAFF].sessions.pop(request["staff_sid"], None)
    response = redirect("/staff/login")
    response.del_cookie(COOKIE, path="/staff")
    return response


async def to_staff(request: web.Request) -> web.StreamResponse:
    return redirect("/staff/", 302)


async def tester_page(request: web.Request) -> web.Response:
    text = (TEMPLATES / "staff.html").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="text/html", charset="utf-8")


# ---------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------

async def _json_body(request: web.Request) -> Dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text='{"error": "Send JSON."}',
                                           content_type="application/json")
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "Send a JSON object."}',
                                 content_type="application/json")
    return body


async def meta(request: web.Request) -> web.Response:
    return web.json_response({
        "threshold": rc.fallback_threshold(),
        "intents": [i for i in rc.load_intents()],
        "levels": list(rc.LEVELS),
    })


async def ask(request: web.Request) -> web.Response:
    body = await _json_body(request)
    question = body.get("question")
    if not isinstance(question, str) or not question.strip():
        return _json_error(400, "Type a question first.")
    if len(question) > rc.MAX_QUESTION_CHARS:
        return _json_error(400, f"Please keep the question under {rc.MAX_QUESTION_CHARS} "
                                "characters.")
    session: Session = request["staff_session"]
    conversation = bool(body.get("conversation"))
    if conversation:
        session.conversation = session.conversation or rc.new_sender()
        sender = session.conversation
    else:
        sender = rc.new_sender()
    try:
        result = await rc.check_question(request.app[STAFF].client(request), question, sender)
    except rc.RasaError as error:
        return _json_error(502, str(error))
    except ValueError as error:
        return _json_error(400, str(error))
    if conversation:
        session.turns += 1
    result["conversation"] = conversation
    result["turn"] = session.turns if conversation else 1
    return web.json_response(result)


async def reset(request: web.Request) -> web.Response:
    session: Session = request["staff_session"]
    session.conversation, session.turns = None, 0
    return web.json_response({"ok": True, "message": "A new conversation starts with the next "
                                                     "question."})


async def list_cases(request: web.Request) -> web.Response:
    try:
        cases = rc.load_cases(request.app[STAFF].cases_file)
    except (ValueError, OSError) as error:
        return _json_error(500, f"The cases file could not be read: {type(error).__name__}")
    return web.json_response({"cases": cases})


async def save_case(request: web.Request) -> web.Response:
    body = await _json_body(request)
    path = request.app[STAFF].cases_file
    try:
        status, case = await asyncio.get_running_loop().run_in_executor(
            None, lambda: rc.save_case(body.get("question"), body.get("intent"),
                                       body.get("level"), path))
    except ValueError as error:
        return _json_error(400, str(error))
    words = {"added": "Saved as a test.", "updated": "The saved test now expects this.",
             "unchanged": "This test was already saved."}[status]
    return web.json_response({"status": status, "case": case, "message": words},
                             status=201 if status == "added" else 200)


async def unanswered(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(int(request.query.get("limit", "50")), 50))
    except ValueError:
        limit = 50
    url = request.app[STAFF].tracker_db_url
    items = await asyncio.get_running_loop().run_in_executor(
        None, lambda: rc.unanswered_messages(url, limit=limit))
    return web.json_response({"items": items, "threshold": rc.fallback_threshold()})


# ---- batches ------------------------------------------------------------------------------

def _job_of(request: web.Request) -> Job:
    job = request.app[STAFF].jobs.get(request.match_info["job"])
    if job is None or job.owner != request["staff_sid"]:
        raise web.HTTPNotFound(text='{"error": "No such batch."}', content_type="application/json")
    return job


async def start_batch(request: web.Request) -> web.Response:
    state = request.app[STAFF]
    if not request.content_type.startswith("multipart/"):
        return _json_error(415, "Upload the file as multipart/form-data (field \"file\").")
    reader = await request.multipart()
    data, filename = b"", "questions.txt"
    async for part in reader:
        if part.name != "file":
            continue
        filename = Path(part.filename or filename).name
        while True:
            chunk = await part.read_chunk()
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_UPLOAD_BYTES:
                return _json_error(413, "The file is too big (1 MB at most).")
        break
    try:
        questions = rc.read_questions(data.decode("utf-8-sig"), filename)
    except UnicodeDecodeError:
        return _json_error(400, "The file must be plain text (UTF-8): .txt or .csv.")
    except ValueError as error:
        return _json_error(400, str(error))
    except csv.Error:
        return _json_error(400, "The CSV file could not be read.")
    if not questions:
        return _json_error(400, "The file has no questions.")
    sid = request["staff_sid"]
    if any(j.owner == sid and j.status == "running" for j in state.jobs.values()):
        return _json_error(409, "A list is already running. Wait for it to finish.")
    client = state.client(request)
    finished = sorted((j for j in state.jobs if state.jobs[j].status != "running"),
                      key=lambda j: state.jobs[j].created)
    while finished and len(state.jobs) >= MAX_JOBS:
        del state.jobs[finished.pop(0)]
    job_id = uuid.uuid4().hex
    job = Job(owner=sid, total=len(questions), filename=filename)
    state.jobs[job_id] = job

    def progress(done: int, total: int, row: Dict[str, Any]) -> None:
        job.done = done

    async def run() -> None:
        try:
            job.rows = await rc.run_batch(client, questions, progress=progress)
            job.status = "done"
        except Exception as error:  # noqa: BLE001 - reported to the page
            job.status, job.error = "failed", f"The list could not be run ({type(error).__name__})."

    job.task = asyncio.get_running_loop().create_task(run())
    return web.json_response({"job": job_id, "total": job.total}, status=202)


async def batch_status(request: web.Request) -> web.Response:
    job = _job_of(request)
    body: Dict[str, Any] = {"status": job.status, "done": job.done, "total": job.total,
                            "filename": job.filename, "error": job.error}
    if job.status == "done":
        body["summary"] = rc.summarize(job.rows)
        body["summary_line"] = rc.summary_line(body["summary"])
        body["rows"] = [rc.report_row(r) for r in job.rows]
    return web.json_response(body)


def _download_name(job: Job, ext: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(job.filename).stem)[:60]
    return f"report-{stem or 'questions'}.{ext}"


async def batch_report(request: web.Request) -> web.Response:
    job = _job_of(request)
    if job.status != "done":
        return _json_error(409, "The list is not finished yet.")
    ext = request.match_info["ext"]
    if ext == "csv":
        text, ctype, headers = "\ufeff" + rc.report_csv(job.rows), "text/csv", {}
    else:
        text, ctype = rc.report_html(job.rows, title=f"Reply test report: {job.filename}"), "text/html"
        headers = {"Content-Security-Policy": REPORT_CSP}
    headers["Content-Disposition"] = f'attachment; filename="{_download_name(job, ext)}"'
    return web.Response(text=text, content_type=ctype, charset="utf-8", headers=headers)


# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------

def state_from_env() -> StaffState:
    return StaffState(
        password=os.environ.get("STAFF_PASSWORD") or None,
        rasa_token=os.environ.get("RASA_AUTH_TOKEN") or None,
        cases_file=rc.cases_file(),
        tracker_db_url=rc.tracker_db_url(),
        rasa_api_url=os.environ.get("RASA_API_URL") or None,
    )


async def _close_http(app: web.Application) -> None:
    state = app[STAFF]
    for job in state.jobs.values():
        if job.task is not None and not job.task.done():
            job.task.cancel()
    if state.http is not None:
        await state.http.close()
        state.http = None


def setup_staff(app: web.Application, state: Optional[StaffState] = None) -> None:
    app[STAFF] = state or state_from_env()
    if app[STAFF].rasa_api_url:
        origin_of(app[STAFF].rasa_api_url)  # an http(s) URL, or refuse to start
    app.middlewares.append(staff_guard)
    app.on_cleanup.append(_close_http)
    r = app.router
    r.add_get("/staff", to_staff)
    r.add_get("/staff/", tester_page)
    r.add_get("/staff/login", login_form)
    r.add_post("/staff/login", login)
    r.add_post("/staff/logout", logout)
    r.add_get("/staff/api/meta", meta)
    r.add_post("/staff/api/ask", ask)
    r.add_post("/staff/api/reset", reset)
    r.add_get("/staff/api/cases", list_cases)
    r.add_post("/staff/api/cases", save_case)
    r.add_get("/staff/api/unanswered", unanswered)
    r.add_post("/staff/api/batch", start_batch)
    r.add_get("/staff/api/batch/{job:[0-9a-f]{32}}", batch_status)
    r.add_get("/staff/api/batch/{job:[0-9a-f]{32}}/report.{ext:csv|html}", batch_report)
