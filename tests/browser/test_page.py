"""The page server (web/app.py): content rendering, escaping, security headers, the script tag."""
import re
from html.parser import HTMLParser

import pytest
import requests
import yaml

from chatpage import ROOT, Served
from web.app import create_app, parse_content, render_blocks

RASA = "http://127.0.0.1:5999"


@pytest.fixture(scope="module")
def site():
    served = Served(create_app(RASA))
    yield served.url
    served.stop()


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script>/<style> elements."""

    def __init__(self):
        super().__init__()
        self.tags, self.inline, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in and data.strip():
            self.inline.append((self._in, data))


def tags_of(html):
    parser = Tags()
    parser.feed(html)
    return parser


def test_page_renders_the_clinic_content(site):
    page = requests.get(f"{site}/", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "<h1>Our Treatments</h1>" in html
    for heading in ("What is an Intrathecal Pain Pump?", "How does this procedure work?",
                    "What are the benefits of this treatment?",
                    "What is the recovery time of this procedure?"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count("<li>") == 5
    assert "usually for 24-48 hours" in html
    assert "<html lang=\"en\">" in html and 'name="viewport"' in html


def test_content_is_parsed_into_headings_paragraphs_and_a_list():
    text = ("Title\n\nA question?\n\nOne sentence,\nwrapped.\nA second paragraph.\n\n"
            "  1. first\n  2. second\nNext question?\nLast words.\n")
    blocks = [(b.kind, b.texts) for b in parse_content(text)]
    assert blocks == [
        ("h1", ("Title",)), ("h2", ("A question?",)),
        ("p", ("One sentence, wrapped.",)), ("p", ("A second paragraph.",)),
        ("ol", ("first", "second")), ("h2", ("Next question?",)), ("p", ("Last words.",)),
    ]


def test_content_is_escaped(tmp_path):
    content = tmp_path / "page.txt"
    content.write_text('Title <b>\n\nIs 1 < 2 & "x"?\n\n<script>alert(1)</script> text.\n')
    html = render_blocks(parse_content(content.read_text()))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Is 1 &lt; 2 &amp; &quot;x&quot;?" in html
    served = Served(create_app(RASA, content_path=content))
    try:
        page = requests.get(f"{served.url}/", timeout=5).text
        assert "&lt;script&gt;alert(1)" in page and "<script>alert" not in page
    finally:
        served.stop()


@pytest.mark.parametrize("path", ["/", "/static/widget.js", "/static/widget.css", "/no-such-page"])
def test_every_response_has_the_security_headers(site, path):
    response = requests.get(f"{site}{path}", timeout=5)
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == f"'self' {RASA}"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_static_files_have_the_right_types(site):
    js = requests.get(f"{site}/static/widget.js", timeout=5)
    css = requests.get(f"{site}/static/widget.css", timeout=5)
    assert "javascript" in js.headers["Content-Type"]
    assert css.headers["Content-Type"].startswith("text/css")


def test_the_page_has_no_inline_script_or_style(site):
    parsed = tags_of(requests.get(f"{site}/", timeout=5).text)
    assert not parsed.inline, parsed.inline
    assert not any("style" in attrs for _, attrs in parsed.tags)
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
    assert len(scripts) == 1 and scripts[0]["src"] == "/static/widget.js"


def test_the_script_tag_carries_the_settings_from_the_domain(site):
    slots = yaml.safe_load((ROOT / "domain" / "clinic.yml").read_text())["slots"]
    parsed = tags_of(requests.get(f"{site}/", timeout=5).text)
    script = next(attrs for tag, attrs in parsed.tags if tag == "script")
    assert script["data-rasa-url"] == RASA
    assert script["data-clinic-phone"] == slots["clinic_phone_e164"]["initial_value"]
    assert script["data-clinic-phone-label"] == slots["clinic_phone"]["initial_value"]
    assert script["data-timeout-ms"] == "15000"
    assert "defer" in script


def test_the_phone_number_is_not_written_in_the_widget_code():
    digits = re.sub(r"\D", "", yaml.safe_load((ROOT / "domain" / "clinic.yml").read_text())
                    ["slots"]["clinic_phone_e164"]["initial_value"])
    code = [p for p in (ROOT / "web").rglob("*") if p.suffix in (".py", ".js", ".css", ".html")]
    assert len(code) >= 6
    for path in code:
        text = re.sub(r"\D", "", path.read_text())
        assert digits[-7:] not in text, f"{path} has the clinic's number in it"


def test_a_bad_rasa_url_is_refused():
    with pytest.raises(ValueError):
        create_app("javascript:alert(1)")
    with pytest.raises(ValueError):
        create_app("http://127.0.0.1:5005; script-src *")
