"""clinic.rest_channel.handle_within: what the REST channel answers with the clinic's number."""
import asyncio
import time

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from clinic.rest_channel import handle_within
from clinic.tracker_store import _noting_failures


def message():
    return UserMessage("what is the trial", CollectingOutputChannel(), "visitor")


def outcome(on_new_message, timeout_s=5.0):
    return asyncio.run(handle_within(on_new_message, message(), timeout_s))


def test_an_answered_message_is_no_failure():
    async def answers(msg):
        await msg.output_channel.send_text_message(msg.sender_id, "The trial lasts 24-48 hours.")

    assert outcome(answers) is None


def test_a_message_that_takes_too_long_is_given_up_in_time():
    async def hangs(msg):
        await asyncio.sleep(60)

    started = time.monotonic()
    assert outcome(hangs, timeout_s=0.2) == "TimeoutError"
    assert time.monotonic() - started < 2


def test_an_error_is_a_failure():
    async def fails(msg):
        raise RuntimeError("model not loaded")

    assert outcome(fails) == "RuntimeError"


def test_a_tracker_store_failure_hidden_by_rasa_is_a_failure():
    async def store_fails_quietly(msg):
        # as Rasa's FailSafeTrackerStore: the store's error is caught and Rasa answers anyway
        try:
            with _noting_failures():
                raise ConnectionError("database is down")
        except ConnectionError:
            pass

    assert outcome(store_fails_quietly) == "tracker_store:ConnectionError"
