"""The widget's own behaviour, against a stub of Rasa's REST channel or no server at all:
the fallback when the assistant can't be reached or is slow, and how replies are rendered."""
import time

from playwright.sync_api import expect

from chatpage import BOT, PHONE, USER, Widget, escalation
from stack.launch import free_port

CALL_CLINIC = 'a[href="tel:+14702991998"]'


def expect_fallback(page, kind_words):
    error = page.locator(".rw-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(kind_words)
    call = error.locator(CALL_CLINIC)
    expect(call).to_have_text("Call the clinic: (470) 299-1998")
    expect(error.get_by_role("button", name="Try again")).to_be_visible()
    expect(page.locator(".rw-typing")).to_have_count(0)
    expect(page.locator("[data-rw-announcer]")).to_contain_text("(470) 299-1998")
    return error


def test_server_down_gives_the_number_and_a_retry(new_page, site_for):
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    page = new_page()
    page.goto(site_for(nobody, timeout_ms=5000))
    chat = Widget(page).open()
    chat.input.fill("what is a pain pump")
    chat.input.press("Enter")
    error = expect_fallback(page, "can't be reached")
    assert chat.user_texts() == ["what is a pain pump"]
    error.get_by_role("button", name="Try again").click()
    expect_fallback(page, "can't be reached")
    expect(page.locator(".rw-error")).to_have_count(1)
    assert chat.user_texts() == ["what is a pain pump"]  # the retry did not repeat the message


def test_slow_server_times_out_then_retry_gets_the_answer(new_page, site_for, stub_rasa):
    stub_rasa.hang_s = 3
    page = new_page()
    page.goto(site_for(stub_rasa.url, timeout_ms=700))
    chat = Widget(page).open()
    chat.input.fill("what is a pain pump")
    started = time.monotonic()
    chat.input.press("Enter")
    expect(page.locator(".rw-typing")).to_be_visible()
    error = expect_fallback(page, "taking too long")
    assert time.monotonic() - started < 2.5

    stub_rasa.hang_s = 0
    stub_rasa.replies = [{"text": "A pump that delivers medication to the spinal cord."}]
    error.get_by_role("button", name="Try again").focus()
    page.keyboard.press("Enter")
    expect(chat.input).to_be_focused()  # the button is gone: focus goes back to the input
    expect(page.locator(BOT).last).to_contain_text("delivers medication")
    expect(page.locator(".rw-error")).to_have_count(0)
    assert [m["message"] for m in stub_rasa.received] == ["what is a pain pump"] * 2


def test_a_server_error_also_gives_the_number(new_page, site_for, stub_rasa):
    stub_rasa.status = 500
    page = new_page()
    page.goto(site_for(stub_rasa.url))
    chat = Widget(page).open()
    chat.input.fill("hello")
    chat.input.press("Enter")
    expect_fallback(page, "can't be reached")


def test_escalation_payloads_become_call_buttons(new_page, site_for, stub_rasa):
    replies = {
        "urgent": [{"text": "Please call the clinic now."}, escalation("urgent")],
        "emergency": [{"text": "This may be an emergency."}, escalation("emergency")],
    }
    stub_rasa.replies = lambda message: replies[message]
    page = new_page()
    page.goto(site_for(stub_rasa.url))
    chat = Widget(page).open()

    chat.ask("urgent")
    urgent = page.locator(".rw-escalation-urgent")
    expect(urgent.locator(CALL_CLINIC)).to_have_text("Call the clinic: (470) 299-1998")
    expect(urgent.locator('a[href="tel:911"]')).to_have_count(0)
    expect(chat.announcer).to_contain_text("Call the clinic: (470) 299-1998")

    chat.ask("emergency")
    emergency = page.locator(".rw-escalation-emergency")
    expect(emergency).to_contain_text("call 911 now")
    expect(emergency.locator('a[href="tel:911"]')).to_have_text("Call 911")
    expect(emergency.locator(CALL_CLINIC)).to_be_visible()

    page.reload()  # the call buttons come back with the conversation
    Widget(page).open()
    expect(page.locator(".rw-escalation-emergency a[href='tel:911']")).to_be_visible()
    expect(page.locator(".rw-escalation-urgent " + CALL_CLINIC)).to_be_visible()


def test_the_phone_is_formatted_from_the_payload(new_page, site_for, stub_rasa):
    stub_rasa.replies = [escalation("handoff", phone="+15555550123")]
    page = new_page()
    page.goto(site_for(stub_rasa.url))
    chat = Widget(page).open()
    chat.ask("a person please")
    expect(page.locator('.rw-escalation a[href="tel:+15555550123"]')).to_have_text(
        "Call the clinic: (555) 555-0123")


def test_quick_replies_send_the_payload_and_show_the_title(new_page, site_for, stub_rasa):
    stub_rasa.replies = [{"text": "Welcome.", "buttons": [
        {"title": "The trial", "payload": "/ask_trial"},
        {"title": "Recovery", "payload": "/ask_recovery"}]}]
    page = new_page()
    page.goto(site_for(stub_rasa.url))
    chat = Widget(page).open()
    chat.ask("hi")
    expect(page.get_by_role("group", name="Suggested questions")).to_be_visible()
    chat.click_quick_reply("The trial")
    assert stub_rasa.received[-1]["message"] == "/ask_trial"
    assert chat.user_texts() == ["hi", "The trial"]
    # only the newest answer's suggestions stay clickable
    expect(page.locator(".rw-quick")).to_have_count(1)
    # by keyboard: the chosen suggestion disappears, focus goes to the input
    page.locator(".rw-quick-button").first.focus()
    page.keyboard.press("Enter")
    expect(chat.input).to_be_focused()
    expect(page.locator(USER).last).to_contain_text("The trial")


def test_the_sender_id_is_stable_and_messages_are_limited(new_page, site_for, stub_rasa):
    page = new_page()
    page.goto(site_for(stub_rasa.url))
    chat = Widget(page).open()
    assert chat.input.get_attribute("maxlength") == "1000"
    chat.ask("one")
    chat.ask("two")
    senders = {m["sender"] for m in stub_rasa.received}
    assert len(senders) == 1 and senders.pop().startswith("web-")
    # the JS check holds even when the attribute is gone
    page.evaluate("document.querySelector('.rw-input').removeAttribute('maxlength')")
    chat.input.fill("x" * 1001)
    chat.input.press("Enter")
    expect(page.locator(".rw-hint")).to_contain_text("1000 characters")
    assert len(stub_rasa.received) == 2


def test_reduced_motion_turns_the_animations_off(new_page, site_for, stub_rasa):
    stub_rasa.hang_s = 1
    page = new_page(reduced_motion="reduce")
    page.goto(site_for(stub_rasa.url))
    chat = Widget(page).open()
    assert page.eval_on_selector(".rw-panel", "e => getComputedStyle(e).animationName") == "none"
    chat.input.fill("hi")
    chat.input.press("Enter")
    assert page.eval_on_selector(".rw-dot", "e => getComputedStyle(e).animationName") == "none"


def test_stored_transcript_is_rendered_as_text(new_page, site_for, stub_rasa):
    page = new_page()
    url = site_for(stub_rasa.url)
    page.goto(url)
    page.evaluate("""url => sessionStorage.setItem('clinicChat:v1:' + url, JSON.stringify({
        sender: 'web-x', transcript: [{who: 'bot', text: '<img src=x onerror=alert(1)>',
                                       buttons: [{title: '<b>bold</b>', payload: '/x'}]}]}))""",
                  stub_rasa.url)
    page.reload()
    chat = Widget(page).open()
    expect(page.locator(BOT)).to_contain_text("<img src=x onerror=alert(1)>")
    expect(page.locator(".rw-quick-button")).to_have_text("<b>bold</b>")
    assert page.locator(".rw-log img, .rw-log b").count() == 0


def test_fits_a_phone_screen(new_page, site_for, stub_rasa):
    stub_rasa.replies = [{"text": "A long answer " * 40 + "withaverylongwordthatcouldoverflow" * 5}]
    page = new_page(viewport=PHONE)
    page.goto(site_for(stub_rasa.url))
    chat = Widget(page).open()
    chat.ask("hi")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.eval_on_selector(".rw-log", "e => e.scrollWidth <= e.clientWidth")
