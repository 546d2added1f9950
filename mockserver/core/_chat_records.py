"""Chat completions: the request body (validated as ``openapi.yaml`` states) and the stored completion record.

Split out of :mod:`mockserver.core.chat`. Types are strict like every other request body; unknown keys (OpenAI
fields the vendor does not mention: ``user``, ``metadata``, ``parallel_tool_calls``, ``logit_bias`` …) are
accepted and ignored (fact sheet §14.1); an explicit ``null`` means "omitted", as OpenAI SDKs may send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mockserver.core.models import Cost
from mockserver.core.replies import Reply
from mockserver.core.usage_rows import LlmUsageRow

ToolName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
MAX_PART_CHARS = 1_000_000


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class TextPart(Body):
    type: Literal["text"]
    text: Annotated[str, StringConstraints(max_length=MAX_PART_CHARS)]


class ImageUrl(Body):
    url: Annotated[str, StringConstraints(min_length=1)]
    detail: Literal["low", "high", "auto"] | None = None


class ImagePart(Body):
    type: Literal["image_url"]
    image_url: ImageUrl


class VideoUrl(Body):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class VideoPart(Body):
    type: Literal["video_url"]
    video_url: VideoUrl


Part = Annotated[TextPart | ImagePart | VideoPart, Field(discriminator="type")]


class CalledFunction(Body):
    name: str
    arguments: str


class MessageToolCall(Body):
    id: str
    type: Literal["function"] = "function"
    function: CalledFunction


class Message(Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Annotated[str, StringConstraints(max_length=MAX_PART_CHARS)] | list[Part] | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    tool_call_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    tool_calls: list[MessageToolCall] | None = None


class FunctionSpec(Body):
    name: ToolName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(Body):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(Body):
    name: ToolName


class NamedToolChoice(Body):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(Body):
    name: ToolName
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(Body):
    include_usage: bool | None = None


Unit = Annotated[float, Field(ge=0, le=1)]
Penalty = Annotated[float, Field(ge=-2, le=2)]
Stop = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ChatRequest(Body):
    """``POST /v1/chat/completions``; bounds the vendor does not print are OpenAI's (fact sheet §14.2)."""

    model: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    messages: Annotated[list[Message], Field(min_length=1, max_length=200)]
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Unit | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    stop: Stop | Annotated[list[Stop], Field(max_length=4)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    vision_quality: Literal["low", "high", "xhigh"] | None = None

    @property
    def output_limit(self) -> int | None:
        """``max_completion_tokens`` (OpenAI's newer name) wins over ``max_tokens`` (fact sheet §14.1)."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


# --- the stored completion ---------------------------------------------------------------------------------

IN_PROGRESS = ("pending", "processing")
PROMPT_PREVIEW = 1000  # characters of the last user text kept for the dashboard (never the whole conversation)
CANCELLED = ("cancelled_by_request", "cancelled_client_disconnect")


@dataclass(slots=True)
class Completion:
    """A chat completion as stored from the hold on; ``state`` is the vendor's internal row state (§4)."""

    id: str
    team_id: str
    model: str
    created_at: datetime
    stream: bool
    prompt_tokens: int
    max_tokens: int
    cost: Cost  # the hold (``cost.amount``), so the ledger holds and releases it like a generation's
    pricing_version: int
    input_rate: float
    output_rate: float
    reasoning_ratio: float
    reply: Reply
    creation_request_id: str
    api_key_id: str | None = None
    state: str = "pending"
    delivered: int = 0  # completion tokens delivered (streams); the whole reply once completed
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    hold_id: str | None = None
    settled: bool = False
    finished_at: datetime | None = None
    scenario: dict[str, Any] | None = None
    instance: str = ""  # the process that serves the stream (a cancel elsewhere is not cancellable)
    prompt: str = ""  # the last user text, cut at PROMPT_PREVIEW: what the dashboard shows (not on the wire)

    @property
    def status(self) -> str:
        """The public status (fact sheet §14.12): ``in_progress``, ``completed``, ``failed`` or ``cancelled``."""
        if self.state in IN_PROGRESS:
            return "in_progress"
        return "cancelled" if self.state in CANCELLED else self.state

    @property
    def terminal(self) -> bool:
        return self.state not in IN_PROGRESS


def usage_row(completion: Completion) -> LlmUsageRow:
    """The completion's row of ``GET /v1/usage/events`` (the [G] stream), rewritten when it settles."""
    usage = completion.usage or {}
    return LlmUsageRow(
        id=completion.id,
        type="chat",
        model=completion.model,
        status="processing" if completion.status == "in_progress" else completion.status,
        created_at=completion.created_at,
        completed_at=completion.finished_at,
        input_tokens=completion.prompt_tokens,
        output_tokens=usage.get("completion_tokens"),
        credits_charged=float(usage.get("credits_charged", 0.0)),
        api_key_id=completion.api_key_id,
        request_id=completion.creation_request_id,
    )


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.text for part in content or () if getattr(part, "type", None) == "text")
