"""The scenario outcome registry and steps: one outcome with its argument, from markers, the header or a rule.

Split out of :mod:`mockserver.core.scenarios`, which re-exports what others use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from mockserver.core.errors import InvalidFormatError, MissingFieldError, ValueOutOfRangeError

GENERATION, REQUEST, WEBHOOK = "generation", "request", "webhook"
COMPLETION = "completion"  # shapes the chat completion a create makes (its reply, its stream)
CREATES = frozenset({"createImage", "createVideo"})
CHATS = frozenset({"createChatCompletion"})
LLM = CHATS | {"createEmbedding"}  # the operations that draw from the tokens-per-minute bucket
# Operations that start a character synthesis run; it can be scripted to fail, stall or take a set time.
SYNTHESES = frozenset({"createCharacter", "resynthesizeCharacter", "regenerateCharacterRef"})
TEN_YEARS = 10 * 365 * 86400
DEFAULT_FAILURE = "Content policy violation"

UNKNOWN = "Unknown scenario outcome {name!r}; known outcomes: {known}."
NEEDS_ARG = "Scenario outcome {name!r} needs an argument ({kind})."
NO_ARG = "Scenario outcome {name!r} takes no argument."
NOT_FOR = "Scenario outcome {name!r} applies to {allowed} only, not {operation}."
TEXT_ARG = "The argument of {name!r} must be a message of at most {limit} characters."
MAX_TEXT = 1000
MAX_REPLY = 100_000  # a scripted chat reply may be long (a 1,000-token stream is 4,000 characters)
UNKNOWN_FIELD = "Unknown field {field!r}; expected one of {expected}."


@dataclass(frozen=True, slots=True)
class Outcome:
    """A named outcome: its level, its argument (kind and default) and the operations it makes sense for."""

    name: str
    level: str
    summary: str
    arg: str | None = None  # "text" | "seconds" | "retry" (whole seconds) | "millis" | "tokens"; None: no argument
    default: str | float | None = None  # used when the argument is omitted; None with ``arg`` set: required
    operations: frozenset[str] | None = CREATES  # None: every operation

    def applies_to(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations


_OUTCOMES = (
    Outcome(
        "fail",
        GENERATION,
        "fails at its finish instant with this error_message",
        "text",
        DEFAULT_FAILURE,
        CREATES | SYNTHESES,
    ),
    Outcome(
        "stall", GENERATION, "never leaves processing (synthesizing) until cancelled", None, None, CREATES | SYNTHESES
    ),
    Outcome("stall_pending", GENERATION, "never leaves pending until cancelled"),
    Outcome("duration", GENERATION, "processing takes exactly this many seconds", "seconds", None, CREATES | SYNTHESES),
    Outcome("expire_early", GENERATION, "output URLs answer 410 this many seconds after completion", "seconds", 0),
    Outcome(
        "succeed", GENERATION, "explicitly the normal lifecycle (useful in chains)", None, None, CREATES | SYNTHESES
    ),
    Outcome("block", REQUEST, "400 prompt_blocked"),
    Outcome("block_reference", REQUEST, "400 reference_blocked"),
    Outcome(
        "provider_unavailable",
        REQUEST,
        "502 provider_unavailable (chat: chat_provider_unavailable)",
        None,
        None,
        CREATES | LLM,
    ),
    Outcome("provider_timeout", REQUEST, "504 provider_timeout"),
    Outcome("internal_error", REQUEST, "500 internal_error", operations=None),
    Outcome("rate_limit", REQUEST, "429 too_many_requests with Retry-After: seconds", "retry", 1, None),
    Outcome("concurrency_limit", REQUEST, "429 concurrency_limit_exceeded with Retry-After: seconds", "retry", 1),
    Outcome(
        "balance_too_low",
        REQUEST,
        "402 balance_too_low (the request's real cost in the message)",
        None,
        None,
        CREATES | CHATS,
    ),
    Outcome("latency", REQUEST, "answer this many milliseconds later (at most 30000)", "millis", operations=None),
    Outcome("drop", REQUEST, "close the connection without answering", operations=None),
    Outcome("tpm_rate_limit", REQUEST, "429 tpm_rate_limit_exceeded with Retry-After: seconds", "retry", 1, LLM),
    Outcome("provider_rate_limited", REQUEST, "503 provider_rate_limited with Retry-After: seconds", "retry", 1, LLM),
    Outcome("reply", COMPLETION, "the reply is this text (still cut by max_tokens and stop)", "text", None, CHATS),
    Outcome("tool_call", COMPLETION, "the reply calls this tool (default: the first of tools)", "text", "", CHATS),
    Outcome(
        "stream_error",
        COMPLETION,
        "an error frame after this many tokens of a 200 stream (not streamed: 502)",
        "tokens",
        0,
        CHATS,
    ),
    Outcome(
        "stream_drop",
        COMPLETION,
        "the connection closes after this many tokens (not streamed: no answer)",
        "tokens",
        0,
        CHATS,
    ),
    Outcome(
        "slow_first_token", COMPLETION, "the first token comes this many milliseconds later", "millis", None, CHATS
    ),
    Outcome("webhook_delay", WEBHOOK, "its deliveries are due this many seconds later", "seconds"),
    Outcome("webhook_duplicate", WEBHOOK, "each of its deliveries is sent twice"),
    Outcome("webhook_out_of_order", WEBHOOK, "its deliveries go after every other one due at the same time"),
)
OUTCOMES: dict[str, Outcome] = {outcome.name: outcome for outcome in _OUTCOMES}
KNOWN = ", ".join(OUTCOMES)
ARG_KINDS = {
    "text": "a message",
    "seconds": "seconds",
    "retry": "whole seconds",
    "millis": "milliseconds",
    "tokens": "a token count",
}
ARG_RANGES = {"seconds": (0, TEN_YEARS), "retry": (1, 86400), "millis": (0, 30_000), "tokens": (0, 1_000_000)}

# --- steps: one outcome with its argument --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    outcome: str
    arg: str | float | None = None

    @property
    def spec(self) -> Outcome:
        return OUTCOMES[self.outcome]

    @property
    def level(self) -> str:
        return self.spec.level

    def wire(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "arg": self.arg}


def _number(outcome: Outcome, raw: Any, param: str) -> float:
    kind = outcome.arg or ""
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            value = None
    if value is None or not math.isfinite(value) or (kind != "seconds" and not value.is_integer()):
        raise InvalidFormatError(f"The argument of {outcome.name!r} must be {ARG_KINDS[kind]}.", param=param)
    low, high = ARG_RANGES[kind]
    if not low <= value <= high:
        raise ValueOutOfRangeError(f"The argument of {outcome.name!r} must be between {low} and {high}.", param=param)
    return int(value) if value.is_integer() else value


def _argument(outcome: Outcome, raw: Any, param: str) -> str | float | None:
    if raw is None or raw == "":
        if outcome.arg is not None and outcome.default is None:
            raise InvalidFormatError(NEEDS_ARG.format(name=outcome.name, kind=ARG_KINDS[outcome.arg]), param=param)
        return outcome.default
    if outcome.arg is None:
        raise InvalidFormatError(NO_ARG.format(name=outcome.name), param=param)
    if outcome.arg != "text":
        return _number(outcome, raw, param)
    limit = MAX_REPLY if outcome.name == "reply" else MAX_TEXT
    if not isinstance(raw, str) or len(raw) > limit:
        raise InvalidFormatError(TEXT_ARG.format(name=outcome.name, limit=limit), param=param)
    return raw.strip()


def make_step(name: str, arg: Any = None, *, param: str | None = None, arg_param: str | None = None) -> Step:
    """A validated step; unknown names list every known outcome (a typo must never silently do nothing)."""
    outcome = OUTCOMES.get(name)
    if outcome is None:
        raise InvalidFormatError(UNKNOWN.format(name=name, known=KNOWN), param=param)
    return Step(name, _argument(outcome, arg, arg_param or param or ""))


def parse_step(value: Any, param: str) -> Step:
    """``"fail"``, ``"fail=Content policy violation"`` or ``{"outcome": "duration", "arg": 30}``."""
    if isinstance(value, str):
        name, sep, arg = value.partition("=")
        return make_step(name.strip(), arg.strip() if sep else None, param=param)
    if isinstance(value, dict):
        for key in value:
            if key not in ("outcome", "arg"):
                raise InvalidFormatError(UNKNOWN_FIELD.format(field=key, expected="outcome, arg"), param=param)
        outcome = value.get("outcome")
        if not isinstance(outcome, str):
            raise MissingFieldError(f"Missing required field: {param}.outcome.", param=f"{param}.outcome")
        return make_step(outcome, value.get("arg"), param=f"{param}.outcome", arg_param=f"{param}.arg")
    raise InvalidFormatError('A step is an outcome name, "name=argument" or {"outcome", "arg"}.', param=param)


MARKER_OPEN = "[mock:"  # every marker starts so: a substring test tells a prompt without one
MARKER = re.compile(r"\[mock:([^\]=]*)(?:=([^\]]*))?\]")


def markers(prompt: str | None) -> list[Step]:
    """Every ``[mock:<outcome>]`` / ``[mock:<outcome>=<argument>]`` of a prompt, validated, in order."""
    if not prompt or MARKER_OPEN not in prompt:
        return []  # most prompts: a substring test instead of a regular-expression scan
    return [make_step(m[1].strip(), m[2], param="prompt") for m in MARKER.finditer(prompt or "")]


def header_steps(value: str | None, header: str) -> list[Step]:
    """``fail``, ``duration=45`` or a comma-separated chain (only its first element is used: one request)."""
    if not value:
        return []
    parts = [part.strip() for part in (value or "").split(",")]
    return [parse_step(part, header) for part in parts if part]


def check_operation(step: Step, operation: str, param: str) -> None:
    spec = step.spec
    if not spec.applies_to(operation):
        allowed = ", ".join(sorted(spec.operations or ()))
        raise InvalidFormatError(NOT_FOR.format(name=step.outcome, allowed=allowed, operation=operation), param=param)
