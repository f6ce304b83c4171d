"""clinic.arrival_order.ArrivalOrder: one message at a time, first come first served, bounded."""
import asyncio
import time

import pytest

from clinic.arrival_order import ArrivalOrder


def test_messages_take_their_turn_in_arrival_order_one_at_a_time():
    order = ArrivalOrder(max_wait_s=5)
    log = []

    async def message(number):
        async with order.turn() as got_turn:
            log.append(("start", number, got_turn))
            await asyncio.sleep(0.01)  # e.g. waiting for the action server: nobody cuts in
            log.append(("end", number, got_turn))

    async def arrive():
        tasks = []
        for number in range(6):
            tasks.append(asyncio.create_task(message(number)))
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)

    asyncio.run(arrive())
    assert log == [(step, n, True) for n in range(6) for step in ("start", "end")]


def test_a_stuck_message_holds_the_others_up_only_for_the_maximum_wait():
    order = ArrivalOrder(max_wait_s=0.2)

    async def stuck():
        async with order.turn():
            await asyncio.sleep(30)

    async def scenario():
        blocker = asyncio.create_task(stuck())
        await asyncio.sleep(0.01)
        started = time.monotonic()
        async with order.turn() as got_turn:
            waited = time.monotonic() - started
        blocker.cancel()
        return got_turn, waited

    got_turn, waited = asyncio.run(scenario())
    assert got_turn is False
    assert 0.15 < waited < 2


def test_the_turn_passes_on_after_a_failure():
    order = ArrivalOrder(max_wait_s=5)

    async def failing():
        async with order.turn():
            raise RuntimeError("rasa failed")

    async def scenario():
        with pytest.raises(RuntimeError):
            await failing()
        async with order.turn() as got_turn:
            return got_turn

    assert asyncio.run(scenario()) is True
