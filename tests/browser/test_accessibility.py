"""WCAG 2.2 AA checks of the page with the chat open and answered: axe-core at desktop and phone
sizes, and the panel at 320 px wide and at 200% zoom (a 1280x800 screen zoomed is 640x400)."""
import pytest
from playwright.sync_api import expect

from chatpage import DESKTOP, PHONE, Widget, run_axe


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_serious_axe_violations_with_an_answer(new_page, live_site, viewport):
    page = new_page(viewport=viewport, bypass_csp=True)  # axe-core is injected as an inline script
    page.goto(live_site)
    assert run_axe(page) == []  # the page with the launcher
    chat = Widget(page).open()
    chat.ask("what is a pain pump")
    page.wait_for_timeout(300)  # the panel's opening animation is over
    assert run_axe(page) == []


@pytest.mark.parametrize("viewport", [{"width": 320, "height": 640}, {"width": 640, "height": 400}],
                         ids=["320px", "200%-zoom"])
def test_the_panel_fits_small_and_zoomed_screens(new_page, live_site, viewport):
    page = new_page(viewport=viewport)
    page.goto(live_site)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    chat = Widget(page).open()
    chat.ask("what is a pain pump")
    # the panel slides in (160 ms): measure it where it ends, not on the way (a fast answer
    # can come before the animation is over)
    chat.panel.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")
    box = chat.panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert page.eval_on_selector(".rw-log", "e => e.scrollWidth <= e.clientWidth")
    for control in (chat.input, page.get_by_role("button", name="Send"),
                    page.get_by_role("button", name="Close chat"),
                    page.get_by_role("button", name="Start over")):
        expect(control).to_be_in_viewport()
    page.keyboard.press("Escape")
    expect(chat.launcher).to_be_focused()
