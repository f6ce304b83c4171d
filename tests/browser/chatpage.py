"""Helpers for the browser tests: drive the chat widget, run axe-core, serve apps in-process."""
import asyncio
import re
import threading
from pathlib import Path
from typing import List, Optional

from aiohttp import web
from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
ANSWER_TIMEOUT_MS = 30_000

# What the widget adds to the page, as selectors.
BOT = ".rw-log .rw-msg-bot:not(.rw-typing)"
USER = ".rw-log .rw-msg-user"


class Widget:
    """Drives the chat widget the way a visitor would."""

    def __init__(self, page: Page):
        self.page = page
        self.launcher = page.locator(".rw-launcher")
        self.panel = page.get_by_role("dialog")
        self.input = page.get_by_label("Your message")
        self.log = page.locator(".rw-log")
        self.announcer = page.locator("[data-rw-announcer]")

    def open(self) -> "Widget":
        if not self.panel.is_visible():
            self.launcher.click()
        expect(self.panel).to_be_visible()
        expect(self.input).to_be_focused()
        return self

    def bot_count(self) -> int:
        return self.page.locator(BOT).count()

    def wait_for_answer(self, before: int, timeout: float = ANSWER_TIMEOUT_MS) -> List[str]:
        """Waits until bot messages beyond the first `before` arrive; returns their text."""
        self.page.wait_for_function(
            """([selector, n]) => document.querySelectorAll(selector).length > n
                                 && !document.querySelector('.rw-typing')""",
            arg=[BOT, before], timeout=timeout)
        return self.page.locator(BOT).all_inner_texts()[before:]

    def ask(self, text: str) -> str:
        """Types a message, sends it with Enter, returns the text of the answer."""
        before = self.bot_count()
        self.input.fill(text)
        self.input.press("Enter")
        return "\n".join(self.wait_for_answer(before))

    def click_quick_reply(self, title: Optional[str] = None) -> tuple:
        """Clicks a quick reply (the first one, or the one titled so); returns (title, answer)."""
        buttons = self.page.locator(".rw-quick-button")
        button = buttons.get_by_text(title, exact=True) if title else buttons.first
        chosen = button.inner_text()
        before = self.bot_count()
        button.click()
        return chosen, "\n".join(self.wait_for_answer(before))

    def user_texts(self) -> List[str]:
        return [re.sub(r"^You:\s*", "", t).strip() for t in self.page.locator(USER).all_text_contents()]

    def storage(self) -> dict:
        return self.page.evaluate(
            """() => { for (let i = 0; i < sessionStorage.length; i++) {
                         const k = sessionStorage.key(i);
                         if (k.startsWith('clinicChat:v1:')) return JSON.parse(sessionStorage.getItem(k)); }
                       return null; }""")


def run_axe(page: Page) -> List[dict]:
    """The serious and critical violations axe-core finds (WCAG 2.0-2.2 A/AA and best practice).
    The page's CSP forbids the inline script axe arrives in: open the page with bypass_csp=True."""
    assert AXE.exists(), "axe-core is missing: run `npm ci` at the repo root"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values:
               ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})""")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]


# ---------------------------------------------------------------------------------------------
# In-process servers: the web app and a stub of Rasa's REST channel
# ---------------------------------------------------------------------------------------------

class Served:
    """An aiohttp app served on a free port from a background thread."""

    def __init__(self, app: web.Application):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)

        async def start() -> int:
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", 0).start()
            return self.runner.addresses[0][1]

        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class StubRasa:
    """Answers POST /webhooks/rest/webhook like Rasa's REST channel, with what the test sets:
    `replies` (a list of bot messages, or a function of the message), `hang_s` seconds of
    silence first, or an error `status`. Records what it received."""

    def __init__(self):
        self.replies = [{"text": "Stub answer."}]
        self.hang_s = 0.0
        self.status = 200
        self.received: List[dict] = []
        app = web.Application(middlewares=[self._cors])
        app.router.add_post("/webhooks/rest/webhook", self._webhook)
        app.router.add_route("OPTIONS", "/webhooks/rest/webhook", self._preflight)
        self.served = Served(app)
        self.url = self.served.url

    @web.middleware
    async def _cors(self, request, handler):
        response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
        return response

    async def _preflight(self, request):
        return web.Response(headers={"Access-Control-Allow-Methods": "POST",
                                     "Access-Control-Allow-Headers": "Content-Type"})

    async def _webhook(self, request):
        body = await request.json()
        self.received.append(body)
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        if self.status != 200:
            return web.json_response({"message": "stub error"}, status=self.status)
        replies = self.replies(body["message"]) if callable(self.replies) else self.replies
        return web.json_response([{"recipient_id": body["sender"], **m} for m in replies])

    def stop(self):
        self.served.stop()


def escalation(level: str, phone: str = "+14702991998") -> dict:
    return {"custom": {"type": "escalation", "level": level, "phone": phone, "reason": "test"}}
