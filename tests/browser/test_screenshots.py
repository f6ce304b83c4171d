"""Screenshots of the chat for the README and for review: docs/screenshots/*.png.

Desktop (1280x800) and phone (360x740), the panel open with an answer, with an urgent
escalation (call the clinic) and with an emergency (911 and call the clinic).
Written on every run, so they show the widget as it is.
"""
import pytest
from playwright.sync_api import expect

from chatpage import DESKTOP, PHONE, ROOT, Widget

SHOTS = ROOT / "docs" / "screenshots"


@pytest.mark.parametrize("name,viewport", [("desktop", DESKTOP), ("phone", PHONE)])
def test_screenshots(new_page, live_site, name, viewport):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(viewport=viewport, reduced_motion="reduce")
    page.goto(live_site)
    chat = Widget(page).open()
    chat.ask("what is a pain pump")
    page.screenshot(path=str(SHOTS / f"chat-{name}-answer.png"))

    chat.ask("my pump is beeping and wont stop")
    call = page.locator('.rw-escalation a[href="tel:+14702991998"]')
    expect(call).to_be_in_viewport()
    page.screenshot(path=str(SHOTS / f"chat-{name}-escalation.png"))

    chat.ask("my husband cant breathe after his refill")
    expect(page.locator('.rw-escalation-emergency a[href="tel:911"]')).to_be_in_viewport()
    page.screenshot(path=str(SHOTS / f"chat-{name}-emergency.png"))
