"""The ``rate_limit`` check of the conventions suite (reference §1.8), on a team of its own.

Every authenticated answer carries ``X-RateLimit-Limit`` (the bucket's capacity), ``X-RateLimit-Remaining`` (tokens
left after the request: below the limit, and falling within a quick burst) and ``X-RateLimit-Reset`` (the epoch second
the bucket is full again: not in the past). A 429 adds ``Retry-After`` (whole seconds) and the envelope
``rate_limit/too_many_requests``. The 429 is provoked only on a local target, by draining the ``estimate_post``
bucket (free, stateless) of a fresh team, so no other suite is throttled; never on a live target.

Findings: ``RateLimitHeadersMissing``, ``RateLimitHeadersInconsistent``, ``RateLimitNotEnforced``,
``RateLimit429Shape``.
"""

from __future__ import annotations

import time
from typing import Any

from contracts.budget import cheapest
from contracts.suites._convention import Convention, envelope_problems

__all__ = ["rate_limit"]

LIMIT, REMAINING, RESET = "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"
ESTIMATE = "/v1/images/estimate"
BURST = 3
CLOCK_SKEW = 300.0  # seconds a live target's clock may differ from ours
RESET_HORIZON = 86400.0  # no documented bucket takes a day to refill
DRAIN_MARGIN = 1.25  # requests beyond the limit to allow for refill while draining
MAX_DRAIN = 2000


def _integers(response: Any) -> tuple[dict[str, int], list[str]]:
    """The three headers as integers, and what is missing or not an integer."""
    values, problems = {}, []
    for name in (LIMIT, REMAINING, RESET):
        raw = response.headers.get(name)
        if raw is None:
            problems.append(f"no {name}")
        elif not raw.strip().isdigit():
            problems.append(f"{name}: {raw!r} is not a non-negative integer")
        else:
            values[name] = int(raw)
    return values, problems


def _target_now(check: Convention) -> float:
    """The target's time: the emulator's team clock when it has one (it may be virtual), else ours."""
    now = check.session.clock_now()
    return now.timestamp() if now is not None else time.time()


def _freeze(check: Convention, frozen: bool) -> bool:
    """Freeze (or unfreeze) the team's clock on the emulator; False when the target has no clock control."""
    if not check.session.clock_control:
        return False
    path = "/_mock/clock/freeze" if frozen else "/_mock/clock/unfreeze"
    return bool(check.session.client.post(path, headers=check.session.headers()).status_code == 200)


def _headers(check: Convention) -> int | None:
    """A quick burst of estimates (and one read); return the estimate bucket's limit when the headers agree."""
    body = cheapest("createImage", {"prompt": "aurous-mock contract kit: rate-limit headers"})
    frozen = _freeze(check, True)  # the emulator's team clock stands still: no refill between the requests
    try:
        answers = [check.send("POST", ESTIMATE, f"estimate {n + 1} of {BURST}", json_body=body) for n in range(BURST)]
    finally:
        if frozen:
            _freeze(check, False)
    read = check.send("GET", "/v1/balance", "a read")
    now = _target_now(check)
    seen: list[dict[str, int]] = []
    for response in [*answers, read]:
        values, missing = _integers(response)
        check.verdict(
            "RateLimitHeadersMissing",
            f"{response.request.method} {response.request.url.path}: X-RateLimit-* missing",
            missing,
            expected=f"{LIMIT}, {REMAINING}, {RESET}",
            response=response,
        )
        if missing:
            continue
        problems = []
        if not values[REMAINING] < values[LIMIT]:
            problems.append(f"{REMAINING} {values[REMAINING]} is not below {LIMIT} {values[LIMIT]} after a request")
        if not now - CLOCK_SKEW <= values[RESET] <= now + RESET_HORIZON:
            problems.append(f"{RESET} {values[RESET]} is not an epoch second near {now:.0f}")
        check.verdict(
            "RateLimitHeadersInconsistent",
            "X-RateLimit-* values inconsistent",
            problems,
            expected=f"{REMAINING} < {LIMIT}; {RESET} an epoch second, not in the past",
            response=response,
        )
        if response is not read:
            seen.append(values)
    if len(seen) < BURST:
        return None
    limits, remaining = {values[LIMIT] for values in seen}, [values[REMAINING] for values in seen]
    problems = [] if len(limits) == 1 else [f"{LIMIT} changed within the burst: {sorted(limits)}"]
    # On a frozen clock each request takes one token; a live bucket refills meanwhile, so it only must not rise.
    exact = [remaining[0] - n for n in range(BURST)]
    if (remaining != exact) if frozen else (remaining[-1] > remaining[0]):
        if check.session.target.api_key is not None and len(limits) == 1:
            # The user's team: other services may spend tokens of this bucket or move the team's clock (a refill)
            # between the kit's requests, so the count proves nothing either way.
            check.skip(f"{REMAINING} over {BURST} requests was {remaining}; not judged in a team with other activity")
            return seen[0][LIMIT]
        problems.append(f"{REMAINING} over {BURST} requests: {remaining}")
    check.verdict(
        "RateLimitHeadersInconsistent",
        "X-RateLimit-Remaining does not fall",
        problems,
        expected=f"{REMAINING} {exact}" if frozen else f"{REMAINING} not rising within a burst",
        response=answers[-1],
    )
    return seen[0][LIMIT] if len(limits) == 1 else None


def _drain(check: Convention, limit: int) -> None:
    """Estimates until a 429 (at most the limit plus a margin for refill), then check its shape."""
    body = cheapest("createImage", {"prompt": "aurous-mock contract kit: rate limit"})
    for _ in range(min(MAX_DRAIN, int(limit * DRAIN_MARGIN) + 10)):  # unrecorded: the trace keeps one, below
        if check.session.client.post(ESTIMATE, json=body, headers=check.session.headers()).status_code == 429:
            break
    last = check.send("POST", ESTIMATE, "one more after draining the bucket", json_body=body, wait_out_429=False)
    left = last.headers.get(REMAINING, "")
    if last.status_code != 429 and left.isdigit() and 0 < int(left) < limit:
        # Tokens were counted but came back as fast as the kit sent requests: a fast clock, not a missing limit.
        check.skip(f"no 429: the bucket refilled as fast as the kit drained it ({REMAINING} {left})")
        return
    if last.status_code != 429:
        check.verdict(
            "RateLimitNotEnforced",
            f"no 429 after {limit} estimates",
            [f"{last.status_code}"],
            expected=f"429 once the bucket of {limit} is empty",
            response=last,
        )
        return
    problems = envelope_problems(last, status=429, code="too_many_requests", error_type="rate_limit")
    retry_after = last.headers.get("retry-after")
    if retry_after is None or not retry_after.isdigit() or int(retry_after) < 1:
        problems.append(f"Retry-After {retry_after!r}, expected whole seconds ≥ 1")
    if last.headers.get(REMAINING) != "0":
        problems.append(f"{REMAINING} {last.headers.get(REMAINING)!r} on a 429, expected '0'")
    check.verdict(
        "RateLimit429Shape",
        "429 not in the documented shape",
        problems,
        expected="429 rate_limit/too_many_requests, Retry-After seconds, Remaining 0",
        response=last,
    )


def rate_limit(check: Convention) -> None:
    limit = _headers(check)
    session = check.session
    if session.target.is_live:
        check.skip("a 429 is never provoked on a live target")
    elif session.target.api_key is not None:
        check.skip("the 429 is not provoked: the target's key is the user's, and draining it would throttle that team")
    elif limit is None:
        check.skip("the 429 is not provoked: the rate-limit headers do not say how many requests it takes")
    else:
        frozen = _freeze(check, True)  # a fast emulator clock could refill as fast as the kit drains
        try:
            _drain(check, limit)
        finally:
            if frozen:
                _freeze(check, False)
