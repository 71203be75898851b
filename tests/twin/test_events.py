"""twin.events: committed changes reach every listener, coalesced but never lost."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from twin.events import PUBLISH_GAP_SECONDS, TWIN_CHANGED, TWIN_GROUP, twin_changed_publish


async def _received_within(channel: str, seconds: float) -> int:
    layer = get_channel_layer()
    count = 0
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=left)
        except TimeoutError:
            break
        assert message["type"] == TWIN_CHANGED
        count += 1
    return count


async def _listening() -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(TWIN_GROUP, channel)
    return channel


def test_a_burst_of_commits_in_a_server_sends_one_signal_now_and_one_after_the_gap():
    async def main() -> tuple[int, int]:
        channel = await _listening()
        # Request threads of a server, as Django runs sync views under ASGI.
        await asyncio.gather(*(sync_to_async(twin_changed_publish)() for _ in range(20)))
        burst = await _received_within(channel, PUBLISH_GAP_SECONDS * 6)
        await asyncio.sleep(PUBLISH_GAP_SECONDS * 2)
        await sync_to_async(twin_changed_publish)()
        later = await _received_within(channel, PUBLISH_GAP_SECONDS * 6)
        return burst, later

    burst, later = asyncio.run(main())
    assert 1 <= burst <= 2
    assert later == 1


def test_a_change_committed_while_a_signal_is_due_is_carried_by_a_later_signal():
    async def main() -> int:
        channel = await _listening()
        await sync_to_async(twin_changed_publish)()  # sent at once
        await sync_to_async(twin_changed_publish)()  # within the gap: due after it
        return await _received_within(channel, PUBLISH_GAP_SECONDS * 6)

    assert asyncio.run(main()) == 2


def test_outside_a_server_the_signal_is_sent_at_once():
    async def listen_then_publish() -> int:
        channel = await _listening()
        # No event loop runs this thread's code: a management command, a shell.
        await asyncio.get_running_loop().run_in_executor(None, twin_changed_publish)
        return await _received_within(channel, 0.5)

    assert asyncio.run(listen_then_publish()) == 1
