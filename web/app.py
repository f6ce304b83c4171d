"""The clinic's treatment page with the chat widget, served by aiohttp.

`/` is the page, rendered from the project's copy of the clinic's content
(content/intrathecal-pain-pump.txt) when the app is created; every piece of text is escaped.
`/static/` serves the widget (widget.js, widget.css) and the page's stylesheet.

The widget talks to the Rasa server directly (REST channel), so the Content Security Policy allows
`connect-src` to the configured Rasa origin and nothing else but this server. The clinic's phone
number comes from the domain (domain/clinic.yml), the one place it is written.

Other modules add their pages through `setup_*` hooks; see `create_app`.
"""
import html
import importlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Dict, List, Tuple
from urllib.parse import urlsplit

from aiohttp import web

from clinic.contact import clinic_phone, clinic_phone_e164

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content" / "intrathecal-pain-pump.txt"
STATIC = Path(__file__).resolve().parent / "static"
TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_TIMEOUT_MS = 15_000

RASA_URL = web.AppKey("rasa_url", str)
CLINIC_PHONE = web.AppKey("clinic_phone", Tuple[str, str])  # (display, E.164)
PAGE_HTML = web.AppKey("page_html", str)
SECURITY_HEADERS = web.AppKey("security_headers", Dict[str, str])

# Extensions that add routes to this app, each a module `web.<name>` with a `setup_<name>(app)`
# function; a module that does not exist (yet) is skipped.
EXTENSIONS = ("staff",)


# ---------------------------------------------------------------------------------------------
# Content: the clinic's page as plain text -> headings, paragraphs and numbered lists
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    kind: str  # "h1", "h2", "p" or "ol"
    texts: Tuple[str, ...]


_LIST_ITEM = re.compile(r"^\s*\d+[.)]\s+(.+)$")
_SENTENCE_END = (".", "!", "?", ":")


def _is_heading(lines: List[str], i: int) -> bool:
    """A short line that asks a question, or stands alone and does not end like a sentence."""
    line = lines[i].strip()
    if len(line) > 100 or _LIST_ITEM.match(lines[i]) or line.endswith((".", ",", ";", ":", "!")):
        return False
    if line.endswith("?"):
        return True
    before_blank = i == 0 or not lines[i - 1].strip()
    after_blank = i == len(lines) - 1 or not lines[i + 1].strip()
    return before_blank and after_blank


def parse_content(text: str) -> List[Block]:
    """Splits the page's text into blocks. The first heading is the page's title (h1)."""
    lines = text.splitlines()
    blocks: List[Block] = []
    paragraph: List[str] = []
    items: List[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("p", (" ".join(paragraph),)))
            paragraph.clear()
        if items:
            blocks.append(Block("ol", tuple(items)))
            items.clear()

    for i, raw in enumerate(lines):
        line = raw.strip()
        item = _LIST_ITEM.match(raw)
        if not line:
            flush()
        elif item:
            if paragraph:
                flush()
            items.append(item.group(1).strip())
        elif _is_heading(lines, i):
            flush()
            has_title = any(b.kind == "h1" for b in blocks)
            blocks.append(Block("h2" if has_title else "h1", (line,)))
        else:
            # A line that ends a sentence ends the paragraph; a wrapped line continues it.
            if items or (paragraph and paragraph[-1].endswith(_SENTENCE_END)):
                flush()
            paragraph.append(line)
    flush()
    return blocks


def render_blocks(blocks: List[Block]) -> str:
    out = []
    for block in blocks:
        esc = [html.escape(t, quote=True) for t in block.texts]
        if block.kind == "ol":
            out.append("<ol>\n" + "\n".join(f"  <li>{t}</li>" for t in esc) + "\n</ol>")
        else:
            out.append(f"<{block.kind}>{esc[0]}</{block.kind}>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Configuration: the clinic's phone number and the Rasa server's origin
# ---------------------------------------------------------------------------------------------



def origin_of(url: str) -> str:
    """scheme://host[:port] of an http(s) URL; refuses anything else (it goes into the CSP)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", parts.netloc):
        raise ValueError(f"unexpected characters in {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(rasa_origin: str) -> Dict[str, str]:
    csp = "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        f"connect-src 'self' {rasa_origin}",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    # Every response, errors and static files included. A handler that needs a different policy
    # (e.g. a staff page) sets its own header, which is kept.
    for name, value in request.app[SECURITY_HEADERS].items():
        response.headers.setdefault(name, value)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

def render_page(blocks: List[Block], rasa_url: str, phone: Tuple[str, str], timeout_ms: int) -> str:
    title = next((b.texts[0] for b in blocks if b.kind == "h1"), "Our Treatments")
    template = Template((TEMPLATES / "page.html").read_text(encoding="utf-8"))
    attr = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    return template.substitute(
        title=attr(f"Intrathecal Pain Pump | {title}"),
        content=render_blocks(blocks),
        rasa_url=attr(rasa_url),
        clinic_phone=attr(phone[0]),
        clinic_phone_e164=attr(phone[1]),
        timeout_ms=attr(int(timeout_ms)),
    )


async def page(request: web.Request) -> web.Response:
    return web.Response(text=request.app[PAGE_HTML], content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(
    rasa_url: str,
    content_path: Path = CONTENT,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> web.Application:
    """The web app: the treatment page with the chat widget talking to `rasa_url`."""
    rasa_url = rasa_url.rstrip("/")
    rasa_origin = origin_of(rasa_url)
    phone = (clinic_phone(), clinic_phone_e164())
    blocks = parse_content(Path(content_path).read_text(encoding="utf-8"))

    app = web.Application()
    app[RASA_URL] = rasa_url
    app[CLINIC_PHONE] = phone
    app[SECURITY_HEADERS] = security_headers(rasa_origin)
    app[PAGE_HTML] = render_page(blocks, rasa_url, phone, timeout_ms)
    app.on_response_prepare.append(_add_security_headers)

    app.router.add_get("/", page)
    app.router.add_get("/health", health)
    app.router.add_static("/static/", STATIC, follow_symlinks=False, show_index=False)

    # Other parts of the site plug in here: web/staff.py defines `setup_staff(app)`, which adds
    # the /staff/ pages (and may set its own CSP per response).
    for name in EXTENSIONS:
        if importlib.util.find_spec(f"web.{name}") is not None:
            getattr(importlib.import_module(f"web.{name}"), f"setup_{name}")(app)
    return app
