"""The REST channel the widget and staff tools use, at the usual /webhooks/rest/webhook.

Rasa's own RestInput answers a malformed body with a 500 and writes the visitor's message
into the error log. This one answers bad requests with a clear 4xx, limits message size,
gives up on a message that takes too long, and never logs what the visitor wrote: on a
failure the visitor gets the clinic's number instead of silence.
"""
import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage

from clinic import rasa_speedups
from clinic.arrival_order import ArrivalOrder
from clinic.contact import clinic_phone
from clinic.tracker_store import watch_failures

logger = logging.getLogger(__name__)


async def handle_within(on_new_message: Callable[[UserMessage], Awaitable[Any]],
                        message: UserMessage, timeout_s: float) -> Optional[Text]:
    """Lets Rasa handle the message within `timeout_s`: what failed, or None if it answered.

    A failure is any exception, the timeout, or a tracker store failure that Rasa's
    FailSafeTrackerStore hid (it answered without the conversation and did not keep it).
    (asyncio.wait_for runs the message in a task of its own. Awaiting it directly, with
    async_timeout, was tried: p50 fell but p95 rose by half under 10 users, because messages
    then no longer take their turn in arrival order.)
    """
    try:
        with watch_failures() as store_failures:
            await asyncio.wait_for(on_new_message(message), timeout_s)
    except Exception as error:  # noqa: BLE001 - any failure must still reach the visitor
        return type(error).__name__
    if store_failures:
        return "tracker_store:" + ",".join(store_failures)
    return None


def _error(status: int, message: Text) -> HTTPResponse:
    return response.json({"error": message}, status=status)


class ClinicRestInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "ClinicRestInput":
        return cls(**(credentials or {}))

    def __init__(
        self,
        max_message_chars: int = 10_000,
        max_sender_chars: int = 128,
        reply_timeout_s: float = 30.0,
        max_turn_wait_s: float = 2.0,
    ) -> None:
        self.max_message_chars = max_message_chars
        self.max_sender_chars = max_sender_chars
        self.reply_timeout_s = reply_timeout_s
        self.arrival_order = ArrivalOrder(max_turn_wait_s)

    def _validate(self, request: Request) -> Any:
        """Returns (sender, text) or an error response."""
        try:
            body = request.json
        except Exception:
            return _error(400, "The body must be JSON.")
        if not isinstance(body, dict):
            return _error(400, 'The body must be a JSON object: {"sender": ..., "message": ...}.')
        sender, text = body.get("sender"), body.get("message")
        if not isinstance(sender, str) or not sender.strip() or not sender.isprintable():
            return _error(400, '"sender" must be a non-empty string of printable characters.')
        if len(sender) > self.max_sender_chars:
            return _error(400, f'"sender" must be at most {self.max_sender_chars} characters.')
        if not isinstance(text, str):
            return _error(400, '"message" must be a string.')
        if len(text) > self.max_message_chars:
            return _error(413, f'"message" must be at most {self.max_message_chars} characters.')
        return sender, text

    def _unavailable(self, sender: Text) -> HTTPResponse:
        text = (f"Sorry, I can't answer right now. Please call the clinic at {clinic_phone()}. "
                "In an emergency, call 911.")
        return response.json([{"recipient_id": sender, "text": text}], status=503)

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        # Every Rasa server of ours loads this channel (credentials.yml): the place to apply it.
        rasa_speedups.apply()
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            checked = self._validate(request)
            if isinstance(checked, HTTPResponse):
                return checked
            sender, text = checked
            collector = CollectingOutputChannel()
            message = UserMessage(text, collector, sender, input_channel=self.name())
            async with self.arrival_order.turn():
                failure = await handle_within(on_new_message, message, self.reply_timeout_s)
            if failure:
                # The conversation id and what failed only: the text is health information.
                logger.error("rest.message.failure sender=%s error=%s", sender, failure)
                return self._unavailable(sender)
            return response.json(collector.messages)

        return webhook
