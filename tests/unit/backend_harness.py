"""What the tests of one provider's backend share: its fake started once per module and reset per test,
and a request, an endpoint at the fake, one call and one stream, without retries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from kdeps.llm import client
from kdeps.llm.client import RetryPolicy
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, Message, StreamDelta
from tests.fakes.base import FakeServer

ONCE = RetryPolicy(max_attempts=1)
F = TypeVar("F", bound=FakeServer)


def shared_fake(make: Callable[[], F]) -> tuple[Any, Any]:
    """The `server` (one per module) and `fake` (reset for each test) fixtures:
    `server, fake = shared_fake(AnthropicFake)`."""

    @pytest.fixture(scope="module")
    def server() -> Iterator[F]:
        with make() as started:
            yield started

    @pytest.fixture
    def fake(server: F) -> F:
        server.reset()
        return server

    return server, fake


@dataclass(frozen=True)
class Harness:
    backend: str
    model: str
    key: str | None

    def req(self, prompt: str = "hi", **kw: Any) -> ChatRequest:
        return ChatRequest(model=self.model, messages=[Message("user", prompt)], timeout=10, **kw)

    def at(self, fake: FakeServer, key: Any = ..., path: str = "") -> Endpoint:
        """An endpoint at the fake with the module's key (`key=None`: none at all)."""
        return Endpoint(self.backend, fake.url + path, self.key if key is ... else key)

    async def ask(self, fake: FakeServer, request: ChatRequest, **kw: Any) -> ChatResult:
        return await client.complete(request, self.at(fake, **kw), retry=ONCE)

    async def collect(self, fake: FakeServer, request: ChatRequest) -> list[StreamDelta]:
        return [d async for d in client.stream(request, self.at(fake), retry=ONCE)]
