"""The deterministic reply maker: plausible prose, JSON (for ``json_object`` or a schema) and tool calls.

A reply depends on the request (its messages, model, temperature, ``seed``, format and tools) and the emulator's
``--seed`` only: the same request gives the same text, a different ``temperature`` may give another. It is never
an echo of the prompt; a few of the prompt's longer words are woven in so the prose reads on topic.
``max_tokens`` cuts the text at the token limit (``finish_reason: "length"``), ``stop`` cuts it before the
first stop sequence (``"stop"``). The token counter is injected (``core.tokens``), so the count a reply reports
is the one the bill uses.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mockserver.core import jsonschema_instance, tokens

Counter = Callable[[str], int]

_OPENINGS = (
    "Here is a short overview.",
    "Good question.",
    "Let me walk through it.",
    "In short, it depends on the details.",
    "There are a few things worth knowing.",
    "Sure.",
)
_SUBJECTS = (
    "The main idea",
    "A practical approach",
    "The simplest option",
    "One common pattern",
    "The first step",
    "A careful reading",
    "The underlying trade-off",
    "A typical team",
    "A good default",
    "The key constraint",
)
_VERBS = (
    "is to start with",
    "usually comes down to",
    "depends on",
    "works best with",
    "tends to favour",
    "should account for",
    "is easier to reason about with",
    "benefits from",
)
_OBJECTS = (
    "a clear definition of the goal",
    "small, testable steps",
    "the constraints you already know",
    "a simple baseline",
    "measurable outcomes",
    "the data you have at hand",
    "a short feedback loop",
    "well-documented assumptions",
    "a fallback for the unusual cases",
    "consistent naming",
)
_TAILS = (
    "",
    "",
    " before adding complexity",
    " and revisiting it later",
    " in most situations",
    " when time is limited",
    " rather than guessing",
)
_CLOSINGS = (
    "Let me know if you want more detail.",
    "I hope this helps.",
    "That should be enough to get started.",
    "Happy to expand on any part of this.",
)
_TOPIC = "When it comes to {topic}, {rest}"
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{4,}")
_STOPWORDS = frozenset(
    "about above after again against because before being below between could doing during every should their "
    "there these those through under until where which while would please write tell explain describe answer "
    "reply using without within".split()
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON text, as OpenAI's wire has it


@dataclass(frozen=True, slots=True)
class Reply:
    """What the model "said": content pieces (in stream order) or tool calls, and why it stopped."""

    pieces: tuple[str, ...]
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str  # stop | length | tool_calls

    @property
    def content(self) -> str | None:
        return None if self.tool_calls else "".join(self.pieces)

    def text(self) -> str:
        """Everything counted as completion tokens: the content, or the tool calls' arguments."""
        if self.tool_calls:
            return "".join(call.arguments for call in self.tool_calls)
        return "".join(self.pieces)


@dataclass(frozen=True, slots=True)
class Ask:
    """What shapes a reply (a request reduced to what matters here)."""

    fingerprint: bytes  # the request's identity (canonical JSON of its reply-shaping fields)
    prompt: str  # the last user text (topic words come from it)
    max_tokens: int
    stop: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None
    tool: dict[str, Any] | None = None  # the tool to call (its function object), when the reply must call one
    scripted: str | None = None  # a scenario's scripted reply text


def draw(seed: int | None, ask_print: bytes) -> random.Random:
    """The reply's random stream: from the emulator's seed and the request's fingerprint."""
    digest = hashlib.sha256(f"{seed}:".encode() + ask_print).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _topics(prompt: str, rng: random.Random) -> list[str]:
    words = [w.lower() for w in _WORD.findall(prompt) if w.lower() not in _STOPWORDS]
    unique = list(dict.fromkeys(words))
    rng.shuffle(unique)
    return unique[:2]


def _sentence(rng: random.Random, topic: str | None) -> str:
    subject, verb, obj, tail = (rng.choice(part) for part in (_SUBJECTS, _VERBS, _OBJECTS, _TAILS))
    if topic is not None:
        return _TOPIC.format(topic=topic, rest=f"{subject.lower()} {verb} {obj}{tail}.")
    return f"{subject} {verb} {obj}{tail}."


def prose(rng: random.Random, prompt: str) -> str:
    """One to three paragraphs of plausible, generic prose; about 40 to 450 tokens."""
    topics = _topics(prompt, rng)
    paragraphs = []
    for p in range(rng.randint(1, 3)):
        sentences = [rng.choice(_OPENINGS)] if p == 0 else []
        for i in range(rng.randint(2, 6)):
            sentences.append(_sentence(rng, topics[i] if p == 0 and i < len(topics) else None))
        paragraphs.append(" ".join(sentences))
    if rng.random() < 0.6:
        paragraphs[-1] += " " + rng.choice(_CLOSINGS)
    return "\n\n".join(paragraphs)


def json_object(rng: random.Random, prompt: str) -> str:
    """A JSON object for ``{"type": "json_object"}``: always parses."""
    body = {
        "answer": _sentence(rng, next(iter(_topics(prompt, rng)), None)),
        "confidence": round(rng.uniform(0.5, 0.99), 2),
        "points": [rng.choice(_OBJECTS) for _ in range(rng.randint(1, 3))],
    }
    return json.dumps(body, ensure_ascii=False)


def _fit(text: str, count: Counter, limit: int) -> str:
    """The longest prefix of ``text`` with at most ``limit`` tokens (token counts grow with the prefix)."""
    if count(text) <= limit:
        return text
    low, high = 0, len(text)  # count(text[:low]) <= limit < count(text[:high])
    while high - low > 1:
        mid = (low + high) // 2
        if count(text[:mid]) <= limit:
            low = mid
        else:
            high = mid
    return text[:low]


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    positions = [i for s in stop if s and (i := text.find(s)) >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True


def content_text(ask: Ask, rng: random.Random) -> str:
    """The whole content before any cut: scripted, JSON for the format, or prose."""
    if ask.scripted is not None:
        return ask.scripted
    fmt = ask.response_format or {}
    if fmt.get("type") == "json_object":
        return json_object(rng, ask.prompt)
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return json.dumps(jsonschema_instance.instance(schema, rng), ensure_ascii=False)
    return prose(rng, ask.prompt)


def make(ask: Ask, *, seed: int | None, new_call_id: Callable[[], str], count: Counter = tokens.count_text) -> Reply:
    """The reply to ``ask``: deterministic in ``(seed, ask)``, cut by ``stop`` and ``max_tokens``."""
    rng = draw(seed, ask.fingerprint)
    if ask.tool is not None:
        schema = ask.tool.get("parameters") or {"type": "object", "properties": {}}
        arguments = json.dumps(jsonschema_instance.instance(schema, rng), ensure_ascii=False)
        kept = _fit(arguments, count, ask.max_tokens)
        call = ToolCall(id=new_call_id(), name=str(ask.tool["name"]), arguments=kept)
        return Reply((), (call,), "tool_calls" if kept == arguments else "length")
    text, _ = _cut_at_stop(content_text(ask, rng), ask.stop)
    kept = _fit(text, count, ask.max_tokens)
    finish = "length" if kept != text else "stop"
    return Reply(tuple(tokens.split(kept)), (), finish)  # one token per piece: a stream's chunks count its usage


def split_arguments(arguments: str, size: int = 8) -> list[str]:
    """A tool call's ``arguments`` in the string fragments a stream sends (OpenAI sends a few characters each)."""
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]
