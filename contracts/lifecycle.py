"""Suite 3, the lifecycle model: a Hypothesis rule-based state machine that drives a target over HTTP.

The machine creates images and videos, cancels them, reads them, reads the balance, fetches outputs and (when
the target has the emulator's control plane) moves the clock, keeping a dict-sized model of what it created.
After every step it checks, each as a named :class:`LifecycleViolation`:

- ``status_never_goes_backwards``: pending < processing < terminal, as observed;
- ``terminal_status_never_changes``: once succeeded / failed / cancelled, always that;
- ``balance_conserved``: ``credits == initial − Σ cost of succeeded``, ``held == Σ cost of pending/processing``,
  ``available == credits − held``; ``balance_never_negative``.

Within rules: ``cancel_semantics`` (pending/processing → cancelled; cancelled → same; succeeded/failed → 400
``generation_not_cancellable``), ``idempotent_replay`` (same key and body → ``409 idempotency_key_in_use`` while the
generation runs, then the same id, never re-billed) and
``output_semantics`` (succeeded → 200 PNG/MP4 bytes; none produced → 422 ``output_not_available``; 24 h after
completion → 410 ``output_expired``).

Safety: against the emulator (``GET /_mock/clock`` answers 200) every example runs on a fresh team (a new
``al_live_<hex>`` key) and creates freely. Against any other target the given key is used and at most
``max_creates`` billable requests are sent over the whole run; the default is unlimited only for loopback base
URLs and 0 otherwise, so against the live API only the read rules run (balance) unless the caller opts in.
Without clock control the advance rule is disabled and reads poll with a bounded wait (``poll_timeout``); the
24 h expiry is then not checked, because it would take 24 h.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    get_state_machine_test,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from contracts.budget import Budget, BudgetExceeded, cheapest
from contracts.targets import Target, has_clock_control

__all__ = ["JobLifecycle", "LifecycleConfig", "LifecycleViolation", "run_lifecycle"]

ORDER = {"pending": 0, "processing": 1, "succeeded": 2, "failed": 2, "cancelled": 2}
ACTIVE = frozenset({"pending", "processing"})
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
OUTPUT_TTL = 86_400
EPSILON = 1e-6
VIDEO_LORA = "seedance-1-pro"


class LifecycleViolation(AssertionError):
    """A broken lifecycle property; ``name`` is the invariant, the message says what was expected and seen."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"[{name}] {message}")
        self.name = name


@dataclass
class LifecycleConfig:
    """Where and how the machine runs; ``JobLifecycle.config`` must be set (``run_lifecycle`` does it)."""

    base_url: str
    api_key: str
    transport: httpx.BaseTransport | None = None
    client: httpx.Client | None = None
    max_creates: int | None = None
    poll_timeout: float = 30.0
    creates: int = 0
    budget: Budget | None = None  # when set, every create is pinned cheapest, guarded and booked (the kit's cap)
    _clock_control: bool | None = field(default=None, repr=False)  # None: probed on first use

    @property
    def creates_allowed(self) -> float:
        if self.max_creates is not None:
            return self.max_creates
        return float("inf") if Target.from_url(self.base_url).is_loopback else 0

    def http(self) -> httpx.Client:
        if self.client is not None:
            return self.client
        return httpx.Client(base_url=self.base_url, transport=self.transport, timeout=30.0)

    def clock_control(self, http: httpx.Client) -> bool:
        """Whether the target has the emulator's clock control: given by the caller, or probed once per run."""
        if self._clock_control is None:
            self._clock_control = has_clock_control(http, {"X-Api-Key": self.api_key})
        return self._clock_control


@dataclass
class Gen:
    """The model of one generation the machine created."""

    id: str
    kind: str  # "image" | "video"
    cost: float
    count: int
    created_at: float  # machine clock (seconds advanced) at creation
    body: dict[str, Any]
    idempotency_key: str | None
    status: str = "pending"
    succeeded_by: float | None = None  # machine clock when first seen succeeded
    history: list[str] = field(default_factory=list)


class JobLifecycle(RuleBasedStateMachine):
    """The lifecycle state machine; subclass with ``config`` set, or use :func:`run_lifecycle`."""

    config: ClassVar[LifecycleConfig]
    generations = Bundle("generations")

    def __init__(self) -> None:
        super().__init__()
        cfg = self.config
        self.http = cfg.http()
        self.has_clock = cfg.clock_control(self.http)
        # Fresh team per example on the emulator; the given key otherwise.
        self.key = f"al_live_{secrets.token_hex(16)}" if self.has_clock else cfg.api_key
        self.now = 0.0
        self.model: dict[str, Gen] = {}
        self.initial = float(self._balance()["credits"])

    # -- HTTP -----------------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Api-Key": self.key, **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def _balance(self) -> dict[str, Any]:
        answer = self._request("GET", "/v1/balance")
        if answer.status_code != 200:
            raise LifecycleViolation(
                "balance_readable", f"GET /v1/balance answered {answer.status_code}: {answer.text}"
            )
        body: dict[str, Any] = answer.json()
        return body

    def _observe(self, gen: Gen, status: str) -> None:
        gen.history.append(status)
        gen.status = status
        if status == "succeeded" and gen.succeeded_by is None:
            gen.succeeded_by = self.now

    def _read(self, gen: Gen) -> str:
        answer = self._request("GET", f"/v1/images/{gen.id}")
        if answer.status_code != 200:
            raise LifecycleViolation("generation_readable", f"GET /v1/images/{gen.id} → {answer.status_code}")
        status = str(answer.json()["status"])
        self._observe(gen, status)
        return status

    def _can_create(self) -> bool:
        return self.config.creates < self.config.creates_allowed

    def _create(self, kind: str, body: dict[str, Any], idempotency_key: str | None) -> Gen | None:
        operation, budget = ("createImage" if kind == "image" else "createVideo"), self.config.budget
        if budget is not None:
            if budget.max_credits is not None:
                body = cheapest(operation, body)
            try:
                budget.guard(operation, body)
            except BudgetExceeded:
                return None  # the cap would be crossed: model nothing, send nothing
        self.config.creates += 1
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        answer = self._request("POST", f"/v1/{kind}s", json=body, headers=headers)
        if budget is not None and 200 <= answer.status_code < 300:
            budget.book(operation, answer.json())
        if answer.status_code == 402:
            return None  # balance_too_low: nothing held, nothing to model
        if answer.status_code != 201:
            raise LifecycleViolation(
                "create_accepted", f"POST /v1/{kind}s {body} → {answer.status_code}: {answer.text}"
            )
        data = answer.json()
        gen = Gen(
            id=data["id"],
            kind=kind,
            cost=float(data["cost"]["amount"]),
            count=int(data.get("image_count") or 1),
            created_at=self.now,
            body=body,
            idempotency_key=idempotency_key,
        )
        self.model[gen.id] = gen
        self._observe(gen, str(data["status"]))
        return gen

    # -- rules ----------------------------------------------------------------------------------------------------

    @precondition(lambda self: self._can_create())
    @rule(
        target=generations,
        prompt=st.text(alphabet="abcdefghij", min_size=1, max_size=12),
        count=st.integers(1, 2),
        enhance=st.booleans(),
        idempotent=st.booleans(),
    )
    def create_image(self, prompt: str, count: int, enhance: bool, idempotent: bool) -> Any:
        body = {"prompt": prompt, "count": count, "enhance_prompt": enhance}
        gen = self._create("image", body, f"lc-{secrets.token_hex(8)}" if idempotent else None)
        return gen.id if gen else multiple()

    @precondition(lambda self: self._can_create())
    @rule(
        target=generations,
        resolution=st.sampled_from(["480p", "720p"]),
        duration=st.integers(2, 5),
        idempotent=st.booleans(),
    )
    def create_video(self, resolution: str, duration: int, idempotent: bool) -> Any:
        body = {"video_lora_id": VIDEO_LORA, "prompt": "a paper boat", "resolution": resolution, "duration": duration}
        gen = self._create("video", body, f"lc-{secrets.token_hex(8)}" if idempotent else None)
        return gen.id if gen else multiple()

    @precondition(lambda self: self._can_create())
    @rule(gen_id=generations)
    def replay_create(self, gen_id: str) -> None:
        gen = self.model[gen_id]
        if gen.idempotency_key is None or self.now - gen.created_at > OUTPUT_TTL - 600:
            return  # no key, or the key may have expired (24 h): a replay would rightly create anew
        self.config.creates += 1
        answer = self._retry(gen)
        if answer.status_code == 409 and _code(answer) == "idempotency_key_in_use" and self._read(gen) not in ACTIVE:
            answer = self._retry(gen)  # it may have finished since the 409: it is terminal now, so this one replays
        elif answer.status_code == 409 and _code(answer) == "idempotency_key_in_use":
            return  # the idempotency page: 409 while the original still runs; the replay comes once it is terminal
        if answer.status_code in (200, 201) and self._read(gen) in ACTIVE:  # statuses never go back
            raise LifecycleViolation(
                "idempotent_replay",
                f"replaying {gen.id} with Idempotency-Key {gen.idempotency_key} answered {answer.status_code} while it "
                "is still running; expected 409 idempotency_key_in_use until it is terminal",
            )
        if answer.status_code not in (200, 201) or answer.json().get("id") != gen.id:
            raise LifecycleViolation(
                "idempotent_replay",
                f"replaying {gen.id} with Idempotency-Key {gen.idempotency_key} answered {answer.status_code} "
                f"id={answer.json().get('id') if answer.status_code < 300 else answer.text}; expected the same id",
            )
        # The replay carries the original (cached) body, so its status is not observed; balance_conserved checks
        # that it was not billed again.

    def _retry(self, gen: Gen) -> Any:
        return self._request(
            "POST", f"/v1/{gen.kind}s", json=gen.body, headers={"Idempotency-Key": str(gen.idempotency_key)}
        )

    @rule(gen_id=generations)
    def cancel(self, gen_id: str) -> None:
        gen = self.model[gen_id]
        before = self._read(gen)
        answer = self._request("POST", f"/v1/images/{gen.id}/cancel")
        if before in ACTIVE or before == "cancelled":
            if answer.status_code == 200 and answer.json().get("status") == "cancelled":
                self._observe(gen, "cancelled")
                return
            if not self.has_clock and answer.status_code == 400 and self._read(gen) in {"succeeded", "failed"}:
                return  # live: it finished between the read and the cancel
            raise LifecycleViolation(
                "cancel_semantics",
                f"cancel of {before} {gen.id} → {answer.status_code} {answer.text}; expected cancelled",
            )
        code = answer.json().get("error", {}).get("code") if answer.status_code == 400 else None
        if code != "generation_not_cancellable":
            raise LifecycleViolation(
                "cancel_semantics",
                f"cancel of {before} {gen.id} → {answer.status_code} {answer.text}; "
                "expected 400 generation_not_cancellable",
            )

    @precondition(lambda self: self.has_clock)
    @rule(seconds=st.sampled_from([5, 30, 600, OUTPUT_TTL + 1]))
    def advance_clock(self, seconds: int) -> None:
        for gen in self.model.values():  # pin down completion bounds before time jumps
            if gen.status in ACTIVE:
                self._read(gen)
        answer = self._request("POST", "/_mock/clock/advance", json={"seconds": seconds})
        if answer.status_code != 200:
            raise LifecycleViolation("clock_control", f"POST /_mock/clock/advance → {answer.status_code}")
        self.now += seconds

    @rule(gen_id=generations)
    def read_generation(self, gen_id: str) -> None:
        gen = self.model[gen_id]
        status = self._read(gen)
        if self.has_clock:
            return
        deadline = time.monotonic() + self.config.poll_timeout
        while status in ACTIVE and time.monotonic() < deadline:  # live: bounded wait
            time.sleep(min(1.0, self.config.poll_timeout))
            status = self._read(gen)

    @rule()
    def read_balance(self) -> None:
        balance = self._balance()
        for name in ("credits", "held_credits", "available_credits"):
            if float(balance[name]) < -EPSILON:
                raise LifecycleViolation("balance_never_negative", f"{name} = {balance[name]} in {balance}")

    @rule(gen_id=generations, index=st.integers(0, 1))
    def fetch_output(self, gen_id: str, index: int) -> None:
        gen = self.model[gen_id]
        status = self._read(gen)
        path = (
            f"/v1/images/{gen.id}/output/{index % gen.count}" if gen.kind == "image" else f"/v1/videos/{gen.id}/output"
        )
        answer = self._request("GET", path, follow_redirects=True)
        code = answer.json().get("error", {}).get("code") if answer.status_code >= 400 else None
        seen = f"GET {path} ({status}) → {answer.status_code} {code or answer.headers.get('content-type')}"
        if status != "succeeded":
            if (answer.status_code, code) != (422, "output_not_available"):
                raise LifecycleViolation("output_semantics", f"{seen}; expected 422 output_not_available")
            return
        assert gen.succeeded_by is not None
        surely_expired = self.now - gen.succeeded_by > OUTPUT_TTL
        surely_fresh = self.now - gen.created_at < OUTPUT_TTL - 600
        if answer.status_code == 410 and code == "output_expired" and not surely_fresh:
            return
        if answer.status_code == 200 and not surely_expired:
            expected = "image/png" if gen.kind == "image" else "video/mp4"
            if not answer.headers.get("content-type", "").startswith(expected) or not answer.content:
                raise LifecycleViolation(
                    "output_semantics", f"{seen}, {len(answer.content)} bytes; expected {expected}"
                )
            return
        expected_text = "410 output_expired" if surely_expired else "200 with the bytes"
        raise LifecycleViolation("output_semantics", f"{seen} at +{self.now:.0f}s; expected {expected_text}")

    # -- invariants -----------------------------------------------------------------------------------------------

    @invariant()
    def status_never_goes_backwards(self) -> None:
        for gen in self.model.values():
            ranks = [ORDER.get(s, 2) for s in gen.history]
            if any(later < earlier for earlier, later in itertools.pairwise(ranks)):
                raise LifecycleViolation("status_never_goes_backwards", f"{gen.id} went {' → '.join(gen.history)}")

    @invariant()
    def terminal_status_never_changes(self) -> None:
        for gen in self.model.values():
            terminal = [s for s in gen.history if s in TERMINAL]
            if len(set(terminal)) > 1:
                raise LifecycleViolation("terminal_status_never_changes", f"{gen.id} went {' → '.join(gen.history)}")

    @invariant()
    def balance_conserved(self) -> None:
        for _ in range(3):  # live time moves: retry until balance and statuses are read consistently
            before = self._balance()
            for gen in self.model.values():
                if gen.status in ACTIVE:
                    self._read(gen)
            balance = self._balance()
            if balance == before:
                break
        credits, held = float(balance["credits"]), float(balance["held_credits"])
        available = float(balance["available_credits"])
        if not self.has_clock:
            # The user's team, where other services spend and hold credits too: only the balance's own arithmetic
            # is the machine's to judge (each generation's charge is the workflows suite's, on its ledger rows).
            if abs(available - (credits - held)) > EPSILON:
                raise LifecycleViolation(
                    "balance_conserved", f"available {available} != credits {credits} − held {held}"
                )
            return
        charged = sum(g.cost for g in self.model.values() if g.status == "succeeded")
        holding = sum(g.cost for g in self.model.values() if g.status in ACTIVE)
        statuses = {g.id: g.status for g in self.model.values()}
        if abs(credits - (self.initial - charged)) > EPSILON:
            raise LifecycleViolation(
                "balance_conserved",
                f"credits {credits} != initial {self.initial} − charged {charged} (succeeded); model {statuses}",
            )
        if abs(held - holding) > EPSILON:
            raise LifecycleViolation(
                "balance_conserved", f"held_credits {held} != Σ cost of pending/processing {holding}; model {statuses}"
            )
        if abs(available - (credits - held)) > EPSILON:
            raise LifecycleViolation("balance_conserved", f"available {available} != credits {credits} − held {held}")
        if min(credits, held, available) < -EPSILON:
            raise LifecycleViolation("balance_never_negative", f"{balance}")

    def teardown(self) -> None:
        if self.config.client is None:
            self.http.close()


def run_lifecycle(
    base_url: str,
    api_key: str,
    *,
    transport: httpx.BaseTransport | None = None,
    client: httpx.Client | None = None,
    max_examples: int = 25,
    steps: int = 20,
    seed: int | None = None,
    max_creates: int | None = None,
    poll_timeout: float = 30.0,
    budget: Budget | None = None,
    clock_control: bool | None = None,
    shrink: bool = True,
) -> None:
    """Run the lifecycle machine against a target; raises :class:`LifecycleViolation` with a minimal program.

    ``shrink=False`` raises the first violating program as found (every shrinking step replays requests: minimal
    programs cost many times the search).

    ``client`` (an ``httpx.Client`` with its own base URL, e.g. Starlette's ``TestClient``) replaces ``transport``.
    ``max_creates`` caps billable requests over the whole run (``None``: unlimited on loopback, else 0);
    ``budget`` additionally pins each create to its cheapest parameters and refuses what would cross its cap.
    ``clock_control`` says whether the target has the emulator's clock (a caller that already probed it); None probes.
    """
    config = LifecycleConfig(
        base_url=base_url,
        api_key=api_key,
        transport=transport,
        client=client,
        max_creates=max_creates,
        poll_timeout=poll_timeout,
        budget=budget,
        _clock_control=clock_control,
    )
    machine = type("ConfiguredJobLifecycle", (JobLifecycle,), {"config": config})
    run_settings = settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        derandomize=seed is None,  # the same programs every run unless a seed asks for others
        suppress_health_check=list(HealthCheck),
        phases=[phase for phase in settings().phases if shrink or phase is not Phase.shrink],
    )
    if seed is None:
        run_state_machine_as_test(machine, settings=run_settings)
    else:
        hypothesis_seed(seed)(get_state_machine_test(machine, settings=run_settings))()


def _code(answer: Any) -> str | None:
    """The envelope's ``error.code`` of an answer, if it has one."""
    try:
        error = answer.json().get("error")
    except ValueError:
        return None
    return error.get("code") if isinstance(error, dict) else None
