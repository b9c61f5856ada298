"""_ext/kernel_messages.py: a long wait for a kernel message is made of short polls,
so a wake-up the event loop misses is found at the next poll, not at the timeout."""
import asyncio
import sys
import time
from pathlib import Path
from queue import Empty

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
import kernel_messages  # noqa: E402


class MissedWakeUp:
    """A socket whose message has arrived but whose polls, like the event loop
    that was not woken, see it only from the `seen_from`-th poll on."""

    def __init__(self, seen_from):
        self.polls, self.seen_from = [], seen_from

    async def poll(self, timeout_ms):
        self.polls.append(timeout_ms)
        if len(self.polls) >= self.seen_from:
            return 1
        await asyncio.sleep(timeout_ms / 1000)
        return 0


class Channel:
    get_msg = kernel_messages.get_msg

    def __init__(self, socket):
        self.socket = socket

    async def _recv(self):
        return {"msg_type": "execute_reply"}


def test_a_missed_wake_up_costs_a_few_short_polls_not_the_timeout(monkeypatch):
    monkeypatch.setattr(kernel_messages, "SLICE", 0.05)
    socket = MissedWakeUp(seen_from=3)
    start = time.monotonic()
    msg = asyncio.run(Channel(socket).get_msg(timeout=600))
    assert msg == {"msg_type": "execute_reply"}
    assert time.monotonic() - start < 1
    assert socket.polls[:2] == [50, 50]   # never one poll of 600 s


def test_no_message_still_raises_empty_at_the_timeout(monkeypatch):
    monkeypatch.setattr(kernel_messages, "SLICE", 0.05)
    socket = MissedWakeUp(seen_from=10**9)
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(Channel(socket).get_msg(timeout=0.3))
    assert 0.3 <= time.monotonic() - start < 1
    assert max(socket.polls) <= 50


def test_patch_installs_it_on_jupyter_clients_async_channels():
    from jupyter_client.channels import AsyncZMQSocketChannel
    kernel_messages.patch()
    assert AsyncZMQSocketChannel.get_msg is kernel_messages.get_msg
