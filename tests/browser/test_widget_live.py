"""The widget on the clinic's page against the real servers (trained model, action server)."""
import re

from playwright.sync_api import expect

from chatpage import BOT, Widget


def test_question_answer_and_quick_reply(new_page, live_site):
    page = new_page()
    page.goto(live_site)
    chat = Widget(page).open()
    expect(page.get_by_role("dialog")).to_contain_text("automated assistant")
    expect(page.get_by_role("dialog")).to_contain_text("not medical advice")
    expect(page.get_by_role("dialog").locator(".rw-notice a[href=\"tel:911\"]")).to_be_visible()

    answer = chat.ask("what is a pain pump")
    assert "spinal cord" in answer
    title, follow = chat.click_quick_reply()
    assert chat.user_texts() == ["what is a pain pump", title]
    assert follow.strip()
    assert not any(t.startswith("/") for t in chat.user_texts())


def test_follow_up_in_context(new_page, live_site):
    page = new_page()
    page.goto(live_site)
    chat = Widget(page).open()
    chat.ask("what is the trial")
    assert "24-48 hours" in chat.ask("how long does it take")


def test_urgent_message_shows_the_call_button(new_page, live_site):
    page = new_page()
    page.goto(live_site)
    chat = Widget(page).open()
    chat.ask("my pump is beeping and wont stop")
    call = page.locator('.rw-escalation a[href="tel:+14702991998"]')
    expect(call).to_have_text("Call the clinic: (470) 299-1998")
    expect(call).to_be_in_viewport()


def test_emergency_shows_911(new_page, live_site):
    page = new_page()
    page.goto(live_site)
    chat = Widget(page).open()
    chat.ask("my husband cant breathe after his refill")
    expect(page.locator('.rw-escalation-emergency a[href="tel:911"]')).to_be_visible()
    expect(page.locator('.rw-escalation a[href="tel:+14702991998"]')).to_be_visible()


def test_reload_keeps_the_conversation_and_start_over_clears_it(new_page, live_site):
    page = new_page()
    page.goto(live_site)
    chat = Widget(page).open()
    chat.ask("what is the trial")
    sender = chat.storage()["sender"]

    page.reload()
    chat = Widget(page).open()
    assert chat.user_texts() == ["what is the trial"]
    expect(page.locator(BOT).first).to_contain_text("trial")
    # same visitor for Rasa too: the follow-up is still about the trial
    assert "24-48 hours" in chat.ask("how long does it take")
    assert chat.storage()["sender"] == sender

    page.get_by_role("button", name="Start over").click()
    expect(page.locator(".rw-log .rw-msg")).to_have_count(0)
    expect(chat.input).to_be_focused()
    assert chat.storage()["sender"] != sender
    assert chat.storage()["transcript"] == []
    page.reload()
    Widget(page).open()
    expect(page.locator(".rw-log .rw-msg")).to_have_count(0)


def test_markup_in_a_message_is_shown_as_text(new_page, live_site):
    page = new_page()
    page.goto(live_site)
    chat = Widget(page).open()
    attack = "<img src=x onerror=alert(1)>"
    chat.ask(attack)
    assert chat.user_texts() == [attack]
    assert page.locator(".rw-log img").count() == 0
    assert not page.watched.dialogs  # the fixture also checks at the end


def test_keyboard_only(new_page, live_site):
    page = new_page()
    page.goto(live_site)
    chat = Widget(page)
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('rw-launcher')"):
            break
    expect(chat.launcher).to_be_focused()
    outline = page.eval_on_selector(".rw-launcher", "e => getComputedStyle(e).outlineStyle + ' ' + "
                                                    "getComputedStyle(e).outlineWidth")
    assert outline.startswith("solid") and float(re.findall(r"[\d.]+", outline)[0]) >= 2

    page.keyboard.press("Enter")
    expect(chat.panel).to_be_visible()
    expect(chat.input).to_be_focused()
    assert chat.launcher.get_attribute("aria-expanded") == "true"

    before = chat.bot_count()
    page.keyboard.type("what is a pain pump")
    page.keyboard.press("Enter")
    chat.wait_for_answer(before)
    expect(chat.announcer).to_contain_text("spinal cord")
    assert chat.announcer.get_attribute("aria-live") == "polite"

    # Tab moves on from the input to Send
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send")).to_be_focused()

    page.keyboard.press("Escape")
    expect(chat.panel).to_be_hidden()
    expect(chat.launcher).to_be_focused()
    assert chat.launcher.get_attribute("aria-expanded") == "false"
