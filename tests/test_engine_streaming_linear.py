"""Streaming stays linear (issue 13, item 7).

Assembling a streamed reply must never copy the text so far for each new
piece (``text += piece`` on a growing string: a 1 MB reply in 8-character
pieces took 13 s).  The speed figure itself is the ``stream_assembly``
benchmark; this test checks the cause, deterministically: no piece is ever
appended to a growing string, however the reply ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from llmgine_nb import MessageBus
from llmgine_nb.chat import Usage
from llmgine_nb.engine import ChatEngine
from llmgine_nb.llm.base import BaseLLM, ModelRequest, RawReply, StreamDelta, StreamEnd
from llmgine_nb.store import Store


class Piece(str):
    """A streamed piece that notices being added to the end of another string."""

    concatenations = 0

    def __radd__(self, other: str) -> str:
        Piece.concatenations += 1
        return str.__add__(other, self)


class PiecesLLM(BaseLLM):
    """Streams ``count`` pieces of 8 characters, optionally waiting forever after them."""

    provider = "test"

    def __init__(self, count: int, *, hang: bool = False) -> None:
        super().__init__("pieces")
        self.count, self.hang = count, hang
        self.sent = asyncio.Event()

    async def _request(self, request: ModelRequest) -> RawReply:
        raise NotImplementedError

    async def _request_stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta | StreamEnd]:
        for _ in range(self.count):
            yield StreamDelta("text", text=Piece("abcdefg "))
        self.sent.set()
        if self.hang:
            await asyncio.Event().wait()
        yield StreamEnd("stop", Usage(input_tokens=1, output_tokens=self.count * 2))


async def test_a_streamed_reply_is_assembled_without_copying_the_text_so_far(tmp_path):
    Piece.concatenations = 0
    engine = await ChatEngine(
        MessageBus(), store=Store(tmp_path / "s.db"), llm=PiecesLLM(5000), save_partial_every=0.001
    ).start()
    result = await engine.send("go")
    assert result.status == "complete" and result.text == "abcdefg " * 5000
    assert Piece.concatenations == 0


async def test_a_cancelled_stream_keeps_every_piece_without_copying(tmp_path):
    Piece.concatenations = 0
    llm = PiecesLLM(3000, hang=True)
    engine = await ChatEngine(MessageBus(), store=Store(tmp_path / "s.db"), llm=llm).start()
    turn = asyncio.ensure_future(engine.send("go"))
    await llm.sent.wait()
    await engine.cancel()
    result = await turn
    assert result.status == "cancelled" and result.text == "abcdefg " * 3000
    assert engine.history[-1].content == "abcdefg " * 3000
    assert Piece.concatenations == 0
