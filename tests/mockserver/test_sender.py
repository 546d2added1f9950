"""``HttpxSender`` refuses a webhook target whose host name resolves to a blocked address (a rebound name).

The URL passed the SSRF rules by name when it was registered; what the name points at when the attempt is sent
is checked again, so a receiver name cannot be turned into the cloud metadata service or a private network later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mockserver.testing import ServerThread
from mockserver.webhooks import HttpxSender, SendResult


async def _hook(request: Request) -> PlainTextResponse:
    await request.body()
    return PlainTextResponse("ok")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with ServerThread(Starlette(routes=[Route("/hook", _hook, methods=["POST"])]), name="sender-receiver") as server:
        yield int(server.base_url.rsplit(":", 1)[1])


def send(url: str, addresses: list[str], *, allow_loopback: bool = True) -> SendResult:
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return addresses

    async def run() -> SendResult:
        sender = HttpxSender(allow_loopback=allow_loopback, resolver=resolver)
        try:
            return await sender.send(url, b"{}", {"Content-Type": "application/json"}, timeout=5)
        finally:
            await sender.aclose()

    result = asyncio.run(run())
    target = httpx.URL(url)
    assert asked == [(target.host, target.port)]  # every URL here names its port
    return result


@pytest.mark.parametrize(
    "addresses",
    [
        ["169.254.169.254"],
        ["10.0.0.7"],
        ["93.184.216.34", "192.168.1.1"],  # any blocked address is enough
        ["fd00::1"],
        ["::ffff:169.254.169.254"],
        ["fe80::1%eth0"],
    ],
)
def test_a_name_resolving_to_a_blocked_address_is_not_called(addresses: list[str]) -> None:
    result = send("https://receiver.example:8443/hook", addresses)
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("blocked_address: receiver.example resolves to ")


def test_a_name_resolving_to_loopback_is_called_while_loopback_receivers_are_allowed(port: int) -> None:
    result = send(f"http://localhost:{port}/hook", ["127.0.0.1"])
    assert (result.status, result.error, result.response_excerpt) == (200, None, "ok")


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_a_name_resolving_to_loopback_is_refused_without_loopback_receivers(port: int, address: str) -> None:
    result = send(f"http://localhost:{port}/hook", [address], allow_loopback=False)
    assert result.error == f"blocked_address: localhost resolves to {address}"
