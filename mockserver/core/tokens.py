"""The one token counter of the LLM surfaces: estimate, hold, usage and charge all count with it.

The vendor tokenizes with a "BytePlus Doubao-family" tokenizer that is not available offline, and nothing in
the emulator may download encodings at run time, so the emulator documents its own deterministic approximation
(fact sheet §12, "emulator recipe", the ``chars/4`` fallback):

- text: ``ceil(characters / 4)`` Unicode code points (``""`` is 0 tokens);
- chat messages: each message adds :data:`MESSAGE_OVERHEAD` (4) tokens (OpenAI-style, non-vendor), plus its
  text parts, its ``name``, and the name and ``arguments`` of any assistant ``tool_calls``;
- chat images by detail tier: ``low`` 512, ``high`` / ``auto`` / absent 1,024, ``vision_quality: "xhigh"`` 2,048;
- chat video parts: :data:`VIDEO_TOKENS` each (the vendor samples frames of the first N seconds; N unpublished);
- tool definitions: the text of their canonical JSON (sorted keys, no spaces);
- embeddings: text as above, 1,024 per image (sheet §12), no per-part overhead;
- completion: the reply text (and each tool call's ``arguments``) as text.

Output text is split into tokens of exactly :data:`CHARS_PER_TOKEN` characters (the last one shorter), so a
stream of :func:`split` pieces carries exactly :func:`count_text` tokens and usage adds up chunk by chunk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = {"low": 512, "high": 1024, "auto": 1024, "xhigh": 2048}
DEFAULT_IMAGE_DETAIL = "high"
VIDEO_TOKENS = 4096
EMBEDDING_IMAGE_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class PromptTokens:
    """A prompt's tokens by modality; ``total`` is what ``usage.prompt_tokens`` reports."""

    text: int = 0
    image: int = 0
    video: int = 0

    @property
    def total(self) -> int:
        return self.text + self.image + self.video

    def __add__(self, other: PromptTokens) -> PromptTokens:
        return PromptTokens(self.text + other.text, self.image + other.image, self.video + other.video)


def count_text(text: str) -> int:
    """``ceil(len(text) / 4)``: the documented stand-in for the vendor tokenizer."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def split(text: str) -> list[str]:
    """``text`` as its tokens: pieces of 4 characters, so ``len(split(t)) == count_text(t)`` and they join to ``t``."""
    return [text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]


def truncate(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` that counts at most ``max_tokens`` tokens."""
    return text[: max(0, max_tokens) * CHARS_PER_TOKEN]


def count_json(value: Any) -> int:
    """Tokens of a JSON value's canonical text (sorted keys, compact separators): tool schemas, arguments."""
    return count_text(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def image_tokens(detail: str | None, vision_quality: str | None = None) -> int:
    """A chat image's tokens: ``vision_quality: "xhigh"`` wins, else its ``detail`` tier (default ``high``)."""
    if vision_quality == "xhigh":
        return IMAGE_TOKENS["xhigh"]
    return IMAGE_TOKENS.get(detail or DEFAULT_IMAGE_DETAIL, IMAGE_TOKENS[DEFAULT_IMAGE_DETAIL])


def _part_tokens(part: Mapping[str, Any], vision_quality: str | None) -> PromptTokens:
    kind = part.get("type")
    if kind == "text":
        return PromptTokens(text=count_text(str(part.get("text", ""))))
    if kind == "image_url":
        spec = part.get("image_url")
        detail = spec.get("detail") if isinstance(spec, Mapping) else None
        return PromptTokens(image=image_tokens(detail if isinstance(detail, str) else None, vision_quality))
    if kind == "video_url":
        return PromptTokens(video=VIDEO_TOKENS)
    return PromptTokens()


def count_content(content: Any, vision_quality: str | None = None) -> PromptTokens:
    """A message ``content``: a string, ``None``, or a list of ``text`` / ``image_url`` / ``video_url`` parts."""
    if content is None:
        return PromptTokens()
    if isinstance(content, str):
        return PromptTokens(text=count_text(content))
    total = PromptTokens()
    for part in content if isinstance(content, Sequence) else ():
        if isinstance(part, Mapping):
            total = total + _part_tokens(part, vision_quality)
    return total


def count_tool_calls(tool_calls: Iterable[Mapping[str, Any]]) -> int:
    """Output-side tokens of tool calls: each call's function name and ``arguments`` string, as text."""
    total = 0
    for call in tool_calls:
        function = call.get("function") or {}
        total += count_text(str(function.get("name", ""))) + count_text(str(function.get("arguments", "")))
    return total


def count_message(message: Mapping[str, Any], vision_quality: str | None = None) -> PromptTokens:
    """One chat message: overhead + content + ``name`` + assistant ``tool_calls`` (name and arguments)."""
    extra = MESSAGE_OVERHEAD + count_text(str(message.get("name") or ""))
    calls = message.get("tool_calls")
    if isinstance(calls, Sequence) and not isinstance(calls, str):
        extra += count_tool_calls(call for call in calls if isinstance(call, Mapping))
    return count_content(message.get("content"), vision_quality) + PromptTokens(text=extra)


def count_prompt(
    messages: Iterable[Mapping[str, Any]],
    *,
    tools: Sequence[Any] | None = None,
    vision_quality: str | None = None,
) -> PromptTokens:
    """A chat request's prompt tokens: every message, plus the tool definitions as their JSON text."""
    total = PromptTokens()
    for message in messages:
        total = total + count_message(message, vision_quality)
    if tools:
        total = total + PromptTokens(text=count_json(list(tools)))
    return total


def count_embedding_input(value: str | Sequence[Any]) -> PromptTokens:
    """An embeddings ``input``: a string, or parts (text as text, 1,024 per image, video counted but refused)."""
    if isinstance(value, str):
        return PromptTokens(text=count_text(value))
    total = PromptTokens()
    for part in value:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text":
            total = total + PromptTokens(text=count_text(str(part.get("text", ""))))
        elif kind == "image_url":
            total = total + PromptTokens(image=EMBEDDING_IMAGE_TOKENS)
        elif kind == "video_url":
            total = total + PromptTokens(video=VIDEO_TOKENS)
    return total
