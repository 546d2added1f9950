"""Helpers of the chat completion tests: request bodies and an SSE parser that reads frames as OpenAI's SDK does."""

from __future__ import annotations

import json
from typing import Any

MODEL = "aurous-grow-2.0-pro"
CHAT = "/v1/chat/completions"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


def body(text: str = "Tell me about deployment strategies", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 40, **extra}


def sse(text: str) -> tuple[list[Any], list[str]]:
    """(the JSON of every ``data:`` frame, ``[DONE]`` kept as the string; the comment lines)."""
    frames: list[Any] = []
    comments: list[str] = []
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("data: "):
                data = line[len("data: ") :]
                frames.append(data if data == "[DONE]" else json.loads(data))
    return frames, comments


def content_of(frames: list[Any]) -> str:
    return "".join(
        f["choices"][0]["delta"].get("content") or ""
        for f in frames
        if isinstance(f, dict) and f.get("choices") and "delta" in f["choices"][0]
    )
