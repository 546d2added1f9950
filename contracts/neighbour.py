"""A noisy neighbour: another service of the same team, busy while a check runs (the normal case on the live API).

With the same key as the check, on a thread, it keeps creating images, cancelling some, letting others finish by
moving the team's clock a few seconds, registering and deleting webhook endpoints and reading the balance and the
ledger. The kit must report no finding on a faithful target whatever it does (see ``bench/no_false_alarms.py``).

It is bounded (``max_actions``, ``max_seconds``, at most ``MAX_ENDPOINTS`` endpoints of its own), stoppable
(``stop()``, or leave the ``with`` block; it deletes its endpoints and cancels what it left pending) and talks to
loopback targets only: it moves the team's clock through the emulator's control plane and would spend real credits
anywhere else.

Example:
    >>> with NoisyNeighbour("http://127.0.0.1:8080", "al_live_…") as neighbour:  # doctest: +SKIP
    ...     result = check(Target.from_url("http://127.0.0.1:8080", api_key="al_live_…"))
    >>> neighbour.actions  # doctest: +SKIP
    Counter({'create': 41, 'read': 30, 'advance': 22, 'cancel': 17, 'endpoint': 9, 'delete_endpoint': 6})
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from types import TracebackType
from typing import Any

import httpx

from contracts.budget import cheapest
from contracts.targets import Target

__all__ = ["MAX_ENDPOINTS", "NoisyNeighbour"]

MAX_ENDPOINTS = 3
PROMPT = "aurous-mock noisy neighbour"
# Nothing listens on the discard port: deliveries to the neighbour's endpoints fail and are retried, as a broken
# consumer's would be.
SINK = "http://127.0.0.1:9/noisy-neighbour"
MAX_ADVANCE = 10.0  # seconds of team clock per move: small enough that no signed URL or expiry margin of the kit breaks


class NoisyNeighbour:
    """Busy traffic on ``base_url`` with ``api_key`` until stopped or bounded.

    Args:
        base_url: a loopback emulator (anything else raises ``ValueError``).
        api_key: the same key the check uses, so both act in one team.
        interval: seconds between actions (the neighbour also waits for each answer).
        max_actions: stop after this many actions.
        max_seconds: stop after this much real time.
        seed: the random choice of actions, for a reproducible neighbour.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        interval: float = 0.1,
        max_actions: int = 5000,
        max_seconds: float = 600.0,
        seed: int | None = None,
    ) -> None:
        if not Target.from_url(base_url).is_loopback:
            raise ValueError(f"the noisy neighbour talks to loopback targets only, not {base_url}")
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self.interval, self.max_actions, self.max_seconds = interval, max_actions, max_seconds
        self.random = random.Random(seed)
        self.actions: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # transport failures by kind (answers of any status are fine)
        self.pending: list[str] = []
        self.endpoints: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(base_url=self.base_url, headers={"X-Api-Key": api_key}, timeout=30.0)

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> NoisyNeighbour:
        self._thread = threading.Thread(target=self._run, name="noisy-neighbour", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop, then delete the neighbour's endpoints and cancel what it left pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60.0)
        try:
            for endpoint in self.endpoints:
                self._client.delete(f"/v1/webhook_endpoints/{endpoint}")
            for generation in self.pending:
                self._client.post(f"/v1/images/{generation}/cancel")
        except httpx.HTTPError:
            pass  # the target went away: nothing left to clean up there
        finally:
            self.endpoints.clear()
            self.pending.clear()
            self._client.close()

    def __enter__(self) -> NoisyNeighbour:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def total(self) -> int:
        return sum(self.actions.values())

    # -- the work -----------------------------------------------------------------------------------------------

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        actions = (self.create, self.create, self.cancel, self.advance, self.endpoint, self.delete_endpoint, self.read)
        while not self._stop.is_set() and self.total < self.max_actions and time.monotonic() < deadline:
            action = self.random.choice(actions)
            try:
                action()
            except httpx.HTTPError as exc:
                self.errors[type(exc).__name__] += 1
            self._stop.wait(self.interval)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def create(self) -> None:
        body = cheapest("createImage", {"prompt": f"{PROMPT} {self.random.randrange(10**6)}"})
        created = self._json(self._client.post("/v1/images", json=body))
        if isinstance(created.get("id"), str):
            self.pending.append(created["id"])
        self.actions["create"] += 1

    def cancel(self) -> None:
        if self.pending:
            generation = self.pending.pop(self.random.randrange(len(self.pending)))
            self._client.post(f"/v1/images/{generation}/cancel")  # 400 when it finished meanwhile: fine
            self.actions["cancel"] += 1

    def advance(self) -> None:
        """Move the team's clock a little: the neighbour's generations (and everyone else's) finish meanwhile."""
        seconds = round(self.random.uniform(1.0, MAX_ADVANCE), 1)
        self._client.post("/_mock/clock/advance", json={"seconds": seconds})
        self.actions["advance"] += 1

    def endpoint(self) -> None:
        if len(self.endpoints) >= MAX_ENDPOINTS:
            return self.delete_endpoint()
        answer = self._json(self._client.post("/v1/webhook_endpoints", json={"url": SINK, "events": ["*"]}))
        if isinstance(answer.get("id"), str):
            self.endpoints.append(answer["id"])
        self.actions["endpoint"] += 1
        return None

    def delete_endpoint(self) -> None:
        if self.endpoints:
            self._client.delete(f"/v1/webhook_endpoints/{self.endpoints.pop(0)}")
            self.actions["delete_endpoint"] += 1

    def read(self) -> None:
        path = self.random.choice(("/v1/balance", "/v1/usage/events?limit=5", "/v1/images?limit=5"))
        self._client.get(path)
        self.actions["read"] += 1
