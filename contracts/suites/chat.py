"""Suite 6, the LLM surfaces as a client sees them (fact sheet aurous-llm-v1.md §3.8, §3.9, §4, §6): the SSE stream.

Chat and embeddings spend credits, so every request is the cheapest one: the cheapest chat model of ``GET /v1/models``,
``max_tokens: 1``, a one-word prompt, each guarded by the kit's budget (``--max-credits``) and booked at what it
charged. Without spend allowed the suite is skipped. Each named check is an "operation" of the report:

=============  ========================================================================================================
``stream``     ``stream: true`` (with ``stream_options.include_usage``): ``200 text/event-stream`` with the
               ``X-RateLimit-TPM-*`` trio; the frame grammar
               (``data:`` lines, blank-line separated, ``:`` comments allowed, no ``event:`` names, ``[DONE]`` last and
               nothing after it); every chunk a ``chat.completion.chunk`` sharing one ``cmp_`` id, ``created`` and
               ``model``; the first chunk's ``delta.role`` is ``assistant``; exactly one ``finish_reason``, on the
               last chunk, with the ``usage`` block in the same chunk (earlier chunks: no usage, or ``null``);
               usage adds up (``total = prompt + completion + reasoning``, ``completion <= max_tokens``); the charge
               equals its breakdown (``input + output + reasoning credits``, within 4-decimal rounding).
``plain``      ``stream: false``: one ``chat.completion`` with exactly one choice, ``status: completed``, the same
               usage and charge rules.
``retrieve``   ``GET /v1/chat/completions/{id}`` of the streamed completion: 200, a final status, the streamed usage.
``embedding``  ``POST /v1/embeddings/estimate`` then ``POST /v1/embeddings`` of one word: one vector whose length is
               one of the model's ``aurous_metadata.dimensions``, and ``credits_charged`` equal to
               ``credits_estimated`` and to the sum of its breakdown (sheet §6.2, §6.3).
=============  ========================================================================================================

Findings: ``StreamNotEventStream``, ``TpmHeadersMissing``, ``StreamFrameGrammar``, ``StreamNotTerminated``,
``StreamChunkShape``, ``StreamRoleNotFirst``, ``StreamFinishReason``, ``StreamUsageMissing``, ``UsageDoesNotAddUp``,
``ChargeNotBreakdown``, ``CompletionShape``, ``RetrieveMismatch``, ``EmbeddingShape``, ``EmbeddingChargeNotEstimate``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contracts.budget import BudgetExceeded
from contracts.exchanges import header, parsed
from contracts.session import Session, SuiteRun

__all__ = ["CHECKS", "SseStream", "parse_sse", "run"]

OPERATION = "createChatCompletion"
PATH = "/v1/chat/completions"
DEFAULT_MODEL = "aurous-grow-2.0-pro"
DEFAULT_EMBEDDING_MODEL = "aurous-embed-vision-1.0"
EMBEDDINGS = "/v1/embeddings"
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "cancelled"})
ROUNDING = 1e-4 + 1e-9  # breakdown parts "sum within 4dp rounding" to credits_charged (sheet §1)
MAX_TOKENS = 1
TPM_HEADERS = ("X-RateLimit-TPM-Limit", "X-RateLimit-TPM-Remaining", "X-RateLimit-TPM-Reset")  # sheet §9
RATE_LIMIT_RETRIES, MAX_RETRY_AFTER = 3, 10  # seconds
PROMPT = [{"role": "user", "content": "Hi"}]


@dataclass
class SseStream:
    """A server-sent event stream as a client parses it (``data:`` payloads, in order)."""

    data: list[str] = field(default_factory=list)
    comments: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return bool(self.data) and self.data[-1] == "[DONE]"


def parse_sse(text: str) -> SseStream:
    """Split ``text`` into events (blank-line separated) the way the SSE spec and OpenAI's SDKs read them."""
    stream = SseStream()
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    for block in normalized.split("\n\n"):
        if not block.strip("\n"):
            continue
        data_lines: list[str] = []
        for line in block.split("\n"):
            if line.startswith(":"):
                stream.comments += 1
            elif line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))
            elif line.split(":", 1)[0] in ("event", "id", "retry"):
                stream.problems.append(f"unexpected SSE field {line.split(':', 1)[0]!r} (the vendor names no events)")
            elif line:
                stream.problems.append(f"a line that is not an SSE field: {line[:80]!r}")
        if data_lines:
            stream.data.append("\n".join(data_lines))
    if "[DONE]" in stream.data and stream.data.index("[DONE]") != len(stream.data) - 1:
        stream.problems.append("frames after data: [DONE]")
    return stream


def _cheapest_model(session: Session) -> str:
    """The chat model with the lowest input + output rate on ``GET /v1/models`` (the day-1 model otherwise)."""
    response = session.request("GET", "/v1/models", step="chat: models")
    body = parsed(response)
    rows = body.get("data") if isinstance(body, dict) else None
    best: tuple[float, str] | None = None
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or row.get("kind") != "chat" or not isinstance(row.get("id"), str):
            continue
        pricing = row.get("chat_pricing") or {}
        try:
            price = float(pricing["input"]["credits_per_M"]) + float(pricing["output"]["credits_per_M"])
        except (KeyError, TypeError, ValueError):
            price = math.inf
        if best is None or price < best[0]:
            best = (price, row["id"])
    return best[1] if best else DEFAULT_MODEL


def _body(model: str, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": MAX_TOKENS}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def _usage_problems(usage: Any) -> list[tuple[str, str]]:
    """(failure, message) for a usage block that does not add up or whose charge is not its breakdown."""
    if not isinstance(usage, dict):
        return [("StreamUsageMissing", f"usage is {usage!r}")]
    raw = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    if not all(isinstance(v, int) and v >= 0 for v in raw.values()):
        return [("UsageDoesNotAddUp", f"token counts are not non-negative integers: {raw}")]
    counts: dict[str, int] = {k: int(v) for k, v in raw.items() if isinstance(v, int)}
    problems: list[tuple[str, str]] = []
    reasoning = usage.get("reasoning_tokens") or 0
    expected = counts["prompt_tokens"] + counts["completion_tokens"] + reasoning
    if counts["total_tokens"] != expected:
        problems.append(("UsageDoesNotAddUp", f"total_tokens {counts['total_tokens']} != prompt + completion + "
                                               f"reasoning = {expected}"))  # fmt: skip
    if counts["completion_tokens"] > MAX_TOKENS:
        problems.append(("UsageDoesNotAddUp", f"completion_tokens {counts['completion_tokens']} > max_tokens 1"))
    breakdown, charged = usage.get("breakdown"), usage.get("credits_charged")
    if not isinstance(breakdown, dict) or not isinstance(charged, int | float):
        return [*problems, ("ChargeNotBreakdown", "usage lacks credits_charged or breakdown")]
    parts = [breakdown.get(k, 0) for k in ("input_credits", "output_credits", "reasoning_credits")]
    if not all(isinstance(p, int | float) for p in parts) or abs(sum(parts) - charged) > ROUNDING:
        problems.append(("ChargeNotBreakdown", f"credits_charged {charged} != sum of breakdown parts {parts}"))
    return problems


def _send(session: Session, suite: SuiteRun, check: str, body: dict[str, Any]) -> Any | None:
    """One guarded chat request; ``None`` (and a skip) when the budget refuses it.

    A ``429`` (another suite drained the team's buckets) is retried after its ``Retry-After``, a bounded number of
    times; a 429 answer costs nothing, so the guard still covers the one completion that is charged.
    """
    try:
        session.budget.guard(OPERATION, body)
    except BudgetExceeded as refused:
        suite.skip(f"{check}: {refused}")
        return None
    response = session.request("POST", PATH, step=f"chat: {check}", json_body=body)
    for _ in range(RATE_LIMIT_RETRIES):
        wait = header(response, "retry-after") or ""
        if response.status_code != 429 or not wait.isdigit() or int(wait) > MAX_RETRY_AFTER:
            break
        time.sleep(int(wait))
        response = session.request("POST", PATH, step=f"chat: {check} (after 429)", json_body=body)
    return response


def _book(session: Session, usage: Any) -> None:
    if isinstance(usage, dict):
        session.budget.book(OPERATION, {"usage": usage})


def _chunks(suite: SuiteRun, stream: SseStream, curl: str) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    for payload in stream.data:
        if payload == "[DONE]":
            continue
        try:
            chunk = json.loads(payload)
        except ValueError:
            suite.finding("stream", "StreamFrameGrammar", "A data frame is not JSON", payload[:200], curl=curl)
            continue
        if isinstance(chunk, dict) and "error" in chunk:
            suite.finding("stream", "StreamChunkShape", "An error frame inside the stream", payload[:300], curl=curl)
        elif isinstance(chunk, dict):
            chunks.append(chunk)
    return chunks


def _check_chunks(suite: SuiteRun, chunks: list[dict[str, Any]], curl: str) -> dict[str, Any] | None:
    """The per-chunk rules; returns the final chunk's usage when the stream ends properly."""
    if not chunks:
        suite.finding("stream", "StreamChunkShape", "No chunk in the stream", "only [DONE] or nothing", curl=curl)
        return None
    content = [c for c in chunks if c.get("choices")]  # an aurous_warning frame has choices: []
    identity = {(c.get("id"), c.get("created"), c.get("model")) for c in content}
    if any(c.get("object") != "chat.completion.chunk" for c in chunks) or len(identity) != 1:
        suite.finding("stream", "StreamChunkShape", "Chunks disagree", f"ids/created/models: {identity}", curl=curl)
    if not content or (content[0]["choices"][0].get("delta") or {}).get("role") != "assistant":
        suite.finding("stream", "StreamRoleNotFirst", "The first chunk's delta has no role: assistant", "", curl=curl)
    finishing = [i for i, c in enumerate(content) if c["choices"][0].get("finish_reason") is not None]
    if finishing != [len(content) - 1]:
        suite.finding("stream", "StreamFinishReason", "finish_reason is not on the last chunk only",
                      f"chunks with a finish_reason: {finishing} of {len(content)}", curl=curl)  # fmt: skip
        return None
    reason = content[-1]["choices"][0]["finish_reason"]
    if reason not in FINISH_REASONS:
        suite.finding("stream", "StreamFinishReason", "Unknown finish_reason", str(reason), curl=curl)
    if any(c.get("usage") is not None for c in content[:-1]):
        suite.finding("stream", "StreamUsageMissing", "Usage before the final chunk", "", curl=curl)
    usage: dict[str, Any] | None = content[-1].get("usage")
    return usage


def check_stream(session: Session, suite: SuiteRun, model: str) -> tuple[str | None, Any]:
    """The ``stream`` check; returns the completion id and the final usage, for ``retrieve``."""
    body = _body(model, stream=True)
    response = _send(session, suite, "stream", body)
    if response is None:
        return None, None
    curl = session.trace.exchanges[-1].curl
    if response.status_code != 200 or "text/event-stream" not in (header(response, "content-type") or ""):
        suite.finding("stream", "StreamNotEventStream", "A streamed completion is not a 200 event stream",
                      f"{response.status_code} {header(response, 'content-type')}", status=response.status_code,
                      curl=curl)  # fmt: skip
        return None, None
    missing = [name for name in TPM_HEADERS if header(response, name) is None]
    if missing:
        suite.finding("stream", "TpmHeadersMissing", "The stream's answer lacks the TPM rate-limit headers",
                      ", ".join(missing), curl=curl)  # fmt: skip
    stream = parse_sse(response.text)
    for problem in stream.problems:
        suite.finding("stream", "StreamFrameGrammar", "The stream breaks the SSE frame grammar", problem, curl=curl)
    if not stream.done:
        suite.finding("stream", "StreamNotTerminated", "The stream does not end with data: [DONE]",
                      (stream.data or ["<nothing>"])[-1][:200], curl=curl)  # fmt: skip
    chunks = _chunks(suite, stream, curl)
    usage = _check_chunks(suite, chunks, curl)
    _book(session, usage)
    for failure, message in _usage_problems(usage):
        suite.finding("stream", failure, "The final chunk's usage is wrong", message, curl=curl)
    suite.passed("stream")
    ids = {c.get("id") for c in chunks if c.get("choices")}
    completion_id = ids.pop() if len(ids) == 1 else None
    return (completion_id if isinstance(completion_id, str) else None), usage


def check_plain(session: Session, suite: SuiteRun, model: str) -> None:
    response = _send(session, suite, "plain", _body(model, stream=False))
    if response is None:
        return
    curl = session.trace.exchanges[-1].curl
    body = parsed(response)
    _book(session, body.get("usage") if isinstance(body, dict) else None)
    choices = body.get("choices") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(choices, list) or len(choices) != 1:
        suite.finding("plain", "CompletionShape", "Not one chat.completion with one choice",
                      str(body)[:300], status=response.status_code, curl=curl)  # fmt: skip
        return
    assert isinstance(body, dict)
    if body.get("object") != "chat.completion" or body.get("status", "completed") != "completed":
        suite.finding("plain", "CompletionShape", "object / status", f"{body.get('object')} {body.get('status')}",
                      curl=curl)  # fmt: skip
    for failure, message in _usage_problems(body.get("usage")):
        suite.finding("plain", failure, "The completion's usage is wrong", message, curl=curl)
    suite.passed("plain")


def check_retrieve(session: Session, suite: SuiteRun, completion_id: str | None, streamed: Any) -> None:
    if completion_id is None:
        suite.skip("retrieve: no streamed completion id to read back")
        return
    response = session.request("GET", f"{PATH}/{completion_id}", step="chat: retrieve")
    body = parsed(response)
    curl = session.trace.exchanges[-1].curl
    if response.status_code != 200 or not isinstance(body, dict) or body.get("id") != completion_id:
        suite.finding("retrieve", "RetrieveMismatch", "GET of the streamed completion",
                      f"{response.status_code} {str(body)[:200]}", status=response.status_code, curl=curl)  # fmt: skip
        return
    stored = body.get("usage")
    usage: dict[str, Any] = stored if isinstance(stored, dict) else {}
    if isinstance(streamed, dict) and usage.get("credits_charged") != streamed.get("credits_charged"):
        suite.finding("retrieve", "RetrieveMismatch", "The stored charge differs from the streamed one",
                      f"{usage.get('credits_charged')} != {streamed.get('credits_charged')}", curl=curl)  # fmt: skip
    if body.get("status") not in ("completed", "cancelled", "failed"):
        suite.finding("retrieve", "RetrieveMismatch", "Not final after [DONE]", str(body.get("status")), curl=curl)
    suite.passed("retrieve")


def _embedding_model(session: Session) -> tuple[str, list[int]]:
    """The cheapest embedding model of ``GET /v1/models`` (by text rate) and its dimensions."""
    body = parsed(session.request("GET", "/v1/models", step="embedding: models"))
    rows = [r for r in (body.get("data") or []) if isinstance(r, dict)] if isinstance(body, dict) else []
    best: tuple[float, str, list[int]] | None = None
    for row in rows:
        if row.get("kind") != "embedding" or not isinstance(row.get("id"), str):
            continue
        try:
            price = float(row["embedding_pricing"]["text"]["credits_per_M"])
        except (KeyError, TypeError, ValueError):
            price = math.inf
        dims = (row.get("aurous_metadata") or {}).get("dimensions") or []
        if best is None or price < best[0]:
            best = (price, row["id"], [d for d in dims if isinstance(d, int)])
    return (best[1], best[2]) if best else (DEFAULT_EMBEDDING_MODEL, [])


def check_embedding(session: Session, suite: SuiteRun) -> None:
    model, dimensions = _embedding_model(session)
    body = {"model": model, "input": "Hi"}
    estimate = session.request("POST", EMBEDDINGS + "/estimate", step="embedding: estimate", json_body=body)
    estimated = parsed(estimate)
    if estimate.status_code != 200 or not isinstance(estimated, dict):
        suite.finding("embedding", "EmbeddingShape", "The estimate did not answer 200", str(estimated)[:300],
                      status=estimate.status_code, curl=session.trace.exchanges[-1].curl)  # fmt: skip
        return
    try:
        session.budget.guard("createEmbedding", body)
    except BudgetExceeded as refused:
        suite.skip(f"embedding: {refused}")
        return
    response = session.request("POST", EMBEDDINGS, step="embedding: create", json_body=body)
    created = parsed(response)
    curl = session.trace.exchanges[-1].curl
    usage = created.get("usage") if isinstance(created, dict) else None
    _book_embedding(session, usage)
    data = created.get("data") if isinstance(created, dict) else None
    if response.status_code != 200 or not isinstance(data, list) or len(data) != 1 or not isinstance(usage, dict):
        suite.finding("embedding", "EmbeddingShape", "Not one embedding with usage", str(created)[:300],
                      status=response.status_code, curl=curl)  # fmt: skip
        return
    vector = data[0].get("embedding") if isinstance(data[0], dict) else None
    if not isinstance(vector, list) or (dimensions and len(vector) not in dimensions):
        size = len(vector) if isinstance(vector, list) else type(vector).__name__
        suite.finding("embedding", "EmbeddingShape", "The vector's length is not one of the model's dimensions",
                      f"{size} not in {dimensions}", curl=curl)  # fmt: skip
    charged, expected = usage.get("credits_charged"), estimated.get("credits_estimated")
    parts = (usage.get("breakdown") or {}).get("input") or {}
    total = sum(v for v in parts.values() if isinstance(v, int | float)) if isinstance(parts, dict) else None
    if charged != expected or total is None or not isinstance(charged, int | float) or abs(total - charged) > ROUNDING:
        suite.finding("embedding", "EmbeddingChargeNotEstimate", "The charge is not the estimate and its breakdown",
                      f"charged {charged}, estimated {expected}, breakdown sum {total}", curl=curl)  # fmt: skip
    suite.passed("embedding")


def _book_embedding(session: Session, usage: Any) -> None:
    if isinstance(usage, dict):
        session.budget.book("createEmbedding", {"usage": usage})


CHECKS: dict[str, Callable[..., Any]] = {
    "stream": check_stream,
    "plain": check_plain,
    "retrieve": check_retrieve,
    "embedding": check_embedding,
}


def run(session: Session, suite: SuiteRun) -> None:
    if not session.spend_allowed:
        suite.skip("chat: every completion spends credits; allow spend with --allow-spend --max-credits")
        return
    session = session.fresh()  # a local target: a team of its own, whose buckets no other suite drained
    model = _cheapest_model(session)
    completion_id: str | None = None
    streamed_usage: Any = None
    if session.selected("stream") or session.selected("retrieve"):
        completion_id, streamed_usage = check_stream(session, suite, model)
    if session.selected("plain"):
        check_plain(session, suite, model)
    if session.selected("retrieve"):
        check_retrieve(session, suite, completion_id, streamed_usage)
    if session.selected("embedding"):
        check_embedding(session, suite)
