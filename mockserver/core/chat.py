"""Chat completions: validate, price, hold, reply, settle, cancel (fact sheet aurous-llm-v1.md §3-§5, §8-§10).

Validation order (§3.7): the body (``ChatRequest``) → model and kind → caps (output limit, tool choice, schema
size and depth, context window) → the TPM bucket → the credit hold (402) → the reply. A completion is stored
from the hold on (``pending`` → ``processing`` → ``completed | failed | cancelled_*``), so ``GET`` shows
``in_progress`` while a stream runs, reset and snapshots cover it, and its ledger rows name its ``cmp_`` id.
Settling replaces the hold by the actual charge (prompt at the input rate, delivered completion and reasoning
tokens at the output rate) and releases the rest; rates are the model's current ones, snapshotted at the hold
(``pricing_version``), never frozen per ``Aurous-Version`` (§8.4).

Streams are served by the process that created them: it keeps a :class:`Live` handle, which a cancel on the
same process flips; a cancel reaching another process is ``chat_cancel_target_not_cancellable`` (§5).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from mockserver.core import jsonschema_instance, llm_models, replies, scenarios, ssrf, tokens
from mockserver.core._chat_records import PROMPT_PREVIEW, ChatRequest, Completion, text_of, usage_row
from mockserver.core.errors import (
    ChatCancelTargetAlreadyTerminalError,
    ChatCancelTargetNotCancellableError,
    ChatCancelTargetNotFoundError,
    InvalidFormatError,
    MaxInputTokensExceededError,
    MaxTokensExceedsHardCapError,
    MissingFieldError,
    MissingMaxTokensNoModelDefaultError,
    ResourceNotFoundError,
    ResponseFormatTooDeepError,
    ResponseFormatTooLargeError,
    ToolChoiceRequiredUnsupportedError,
    TpmRateLimitExceededError,
)
from mockserver.core.ledger import Ledger
from mockserver.core.llm_models import LlmModel, LlmModels
from mockserver.core.models import Cost, Team
from mockserver.core.ratelimit import Decision, Limiter
from mockserver.core.usage_rows import UsageRows
from mockserver.ids import IdSource
from mockserver.settings import Settings
from mockserver.store import Store

KIND = "chat_completion"
SETTLED = "chat_settled"  # one marker per settled completion: its count moves the dashboard's change digest
TPM_BUCKET = "llm_tpm"
DATA_IMAGE = "data:image/"
NO_TOOLS = "tool_choice {choice!r} needs tools."
UNKNOWN_TOOL = "tool_choice names {name!r}, which is not among tools."
BAD_SCHEMA = "{param}: {reason}"
BAD_DATA_URI = "A data: URI must be data:image/<type>;base64,<data>."
NEEDS_CONTENT = "messages[{i}] ({role}) needs content."
NEEDS_CALL_ID = "messages[{i}] (tool) needs tool_call_id."
DEFAULT_TOOL = {"name": "tool", "parameters": {"type": "object", "properties": {}}}


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated request: what the hold, the reply and the stream need."""

    req: ChatRequest
    model: LlmModel
    max_tokens: int
    prompt_tokens: int
    tool: dict[str, Any] | None  # the function the reply must call (forced by tool_choice)
    body: dict[str, Any]  # the request as parsed (JSON values), for the reply's fingerprint

    @property
    def tpm_cost(self) -> int:
        """What the TPM bucket is debited at admission: the prompt and the whole output allowance (§14.14)."""
        return self.prompt_tokens + self.max_tokens


@dataclass(slots=True)
class Live:
    """A stream in flight on this process: a cancel sets ``cancel_at`` and calls ``wake``."""

    completion_id: str
    cancel_at: datetime | None = None
    wake: Callable[[], None] = lambda: None
    finished: Callable[[], None] = lambda: None
    done: bool = False


class Chat:
    """The chat completion service; every method takes the team and that team's ``now``."""

    def __init__(
        self,
        store: Store,
        ids: IdSource,
        settings: Settings,
        models: LlmModels,
        ledger: Ledger,
        limiter: Limiter,
        rows: UsageRows | None = None,
    ) -> None:
        self.store = store
        self.rows = rows or UsageRows(store)
        self.ids = ids
        self.settings = settings
        self.models = models
        self.ledger = ledger
        self.limiter = limiter
        self.instance = uuid.uuid4().hex  # this process (a stream is cancellable only where it runs)
        self.live: dict[str, Live] = {}

    # --- validation (the caps: after the body, before any charge) ------------------------------------------

    def plan(self, team: Team, req: ChatRequest, body: dict[str, Any]) -> Plan:
        model = self.models.resolve(req.model, "chat")
        max_tokens = self._output_limit(req, model)
        self._check_messages(req)
        tool = self._forced_tool(req, model)
        self._check_schemas(req)
        messages = [m.model_dump(mode="json", exclude_none=True) for m in req.messages]
        tools = [t.model_dump(mode="json", exclude_none=True) for t in req.tools or ()]
        prompt = tokens.count_prompt(messages, tools=tools, vision_quality=req.vision_quality).total
        if prompt > model.context_window:
            raise MaxInputTokensExceededError(
                param="messages", tokens=prompt, model=model.id, limit=model.context_window
            )
        return Plan(req, model, max_tokens, prompt, tool, body)

    @staticmethod
    def _output_limit(req: ChatRequest, model: LlmModel) -> int:
        limit = req.output_limit
        param = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
        if limit is None:
            if model.default_max_output_tokens is None:
                raise MissingMaxTokensNoModelDefaultError(param="max_tokens", model=model.id)
            limit = model.default_max_output_tokens
        cap = model.max_output_tokens_hard_cap
        if cap is not None and limit > cap:
            raise MaxTokensExceedsHardCapError(param=param, max_tokens=limit, cap=cap, model=model.id)
        return limit

    @staticmethod
    def _check_messages(req: ChatRequest) -> None:
        for i, message in enumerate(req.messages):
            if message.role == "tool" and message.tool_call_id is None:
                raise MissingFieldError(NEEDS_CALL_ID.format(i=i), param=f"messages[{i}].tool_call_id")
            if message.content is None and not (message.role == "assistant" and message.tool_calls):
                raise MissingFieldError(NEEDS_CONTENT.format(i=i, role=message.role), param=f"messages[{i}].content")
            for j, part in enumerate(message.content if isinstance(message.content, list) else ()):
                param = f"messages[{i}].content[{j}]"
                if part.type == "image_url":
                    _check_media_url(part.image_url.url, f"{param}.image_url.url", allow_data=True)
                elif part.type == "video_url":
                    _check_media_url(part.video_url.url, f"{param}.video_url.url", allow_data=False)

    @staticmethod
    def _forced_tool(req: ChatRequest, model: LlmModel) -> dict[str, Any] | None:
        choice = req.tool_choice
        functions = {t.function.name: t.function.model_dump(mode="json", by_alias=True) for t in req.tools or ()}
        if choice is None or choice in ("auto", "none"):
            return None
        if choice == "required" and not model.has("tool_choice_required"):
            raise ToolChoiceRequiredUnsupportedError(param="tool_choice", model=model.id)
        if not functions:
            name = choice if isinstance(choice, str) else choice.type
            raise InvalidFormatError(NO_TOOLS.format(choice=name), param="tool_choice")
        if isinstance(choice, str):  # "required": the first tool (deterministic)
            return next(iter(functions.values()))
        if choice.function.name not in functions:
            raise InvalidFormatError(UNKNOWN_TOOL.format(name=choice.function.name), param="tool_choice.function.name")
        return functions[choice.function.name]

    def _check_schemas(self, req: ChatRequest) -> None:
        fmt = req.response_format
        if fmt is not None and fmt.type == "json_schema":
            if fmt.json_schema is None:
                raise MissingFieldError(
                    "Missing required field: response_format.json_schema.", param="response_format.json_schema"
                )
            schema = fmt.json_schema.schema_ or {}
            size = len(orjson.dumps(schema))
            limit = self.settings.chat_max_schema_bytes
            if size > limit:
                raise ResponseFormatTooLargeError(param="response_format.json_schema.schema", size=size, limit=limit)
            deep = jsonschema_instance.depth(schema)
            if deep > self.settings.chat_max_schema_depth:
                raise ResponseFormatTooDeepError(
                    param="response_format.json_schema.schema", depth=deep, limit=self.settings.chat_max_schema_depth
                )
            _usable(schema, "response_format.json_schema.schema")
        for i, tool in enumerate(req.tools or ()):
            if tool.function.parameters is not None:
                _usable(tool.function.parameters, f"tools[{i}].function.parameters")

    # --- admission: the TPM bucket --------------------------------------------------------------------------

    def tpm(self, team: Team, now: datetime, amount: float = 0) -> Decision:
        """Debit (or, with 0, read) the team's tokens-per-minute bucket."""
        return self.limiter.take(team.id, TPM_BUCKET, now, amount)

    def admit(self, team: Team, plan: Plan, now: datetime) -> Decision:
        """Debit ``est_in + max_tokens`` tokens, or 429 ``tpm_rate_limit_exceeded`` with ``Retry-After``."""
        decision = self.tpm(team, now, plan.tpm_cost)
        if not decision.allowed:
            error = TpmRateLimitExceededError(retry_after=decision.retry_after)
            error.headers["Retry-After"] = str(decision.retry_after)
            raise error
        return decision

    # --- create ---------------------------------------------------------------------------------------------

    def _reasoning_ratio(self, plan: Plan) -> float:
        if not plan.model.has("reasoning_effort"):
            return 0.0  # silently ignored on models without the capability (§3.6)
        return float(self.settings.chat_reasoning_ratios.get(plan.req.reasoning_effort or "medium", 0.0))

    def _ask(self, plan: Plan, step: scenarios.Step | None) -> replies.Ask:
        body = plan.body
        shaping = {k: body.get(k) for k in ("model", "messages", "temperature", "top_p", "seed", "tools")}
        shaping["response_format"] = body.get("response_format")
        tool = plan.tool
        scripted = None
        if step is not None and step.outcome == "reply":
            scripted = str(step.arg)
        if step is not None and step.outcome == "tool_call":
            tool = self._scenario_tool(plan, step.arg)
        prompt = next((text_of(m.content) for m in reversed(plan.req.messages) if m.role == "user"), "")
        return replies.Ask(
            fingerprint=orjson.dumps(shaping, option=orjson.OPT_SORT_KEYS),
            prompt=prompt,
            max_tokens=plan.max_tokens,
            stop=plan.req.stops,
            response_format=plan.req.response_format.model_dump(mode="json", by_alias=True)
            if plan.req.response_format is not None
            else None,
            tool=tool,
            scripted=scripted,
        )

    @staticmethod
    def _scenario_tool(plan: Plan, name: Any) -> dict[str, Any]:
        functions = [t.function.model_dump(mode="json", by_alias=True) for t in plan.req.tools or ()]
        if name:
            return next((f for f in functions if f["name"] == name), {**DEFAULT_TOOL, "name": str(name)})
        return functions[0] if functions else dict(DEFAULT_TOOL)

    def create(self, team: Team, plan: Plan, meta: dict[str, Any]) -> Completion:
        """Reply, hold (402 ``balance_too_low`` before any row exists) and store the completion as ``processing``.

        ``meta``: ``now``, ``request_id``, ``api_key_id``, optional ``scenario`` (a step).
        """
        now: datetime = meta["now"]
        step: scenarios.Step | None = meta.get("scenario")
        completion_id = self.ids.new("cmp", at=now, scope=team.id)
        ask = self._ask(plan, step)
        reply = replies.make(
            ask,
            seed=self.settings.seed,
            new_call_id=lambda: self.ids.new("call", at=now, scope=team.id),
        )
        model = plan.model
        hold = float(llm_models.chat_hold(model, plan.prompt_tokens, plan.max_tokens))
        completion = Completion(
            id=completion_id,
            team_id=team.id,
            model=model.id,
            created_at=now,
            stream=bool(plan.req.stream),
            prompt_tokens=plan.prompt_tokens,
            max_tokens=plan.max_tokens,
            cost=Cost(amount=hold, base=hold, enhance=0),
            pricing_version=model.pricing_version,
            input_rate=float(model.input_rate or 0),
            output_rate=float(model.output_rate or 0),
            reasoning_ratio=self._reasoning_ratio(plan),
            reply=reply,
            creation_request_id=meta["request_id"],
            api_key_id=meta.get("api_key_id"),
            scenario=step.wire() if step is not None else None,
            instance=self.instance,
            prompt=ask.prompt[:PROMPT_PREVIEW],
        )
        with self.store.transaction():
            self.ledger.hold(team, completion, now)
            completion.state = "processing"  # dispatched at once: nothing queues in the emulator
            self.store.put(KIND, completion.id, completion, owner=team.id)
            self.rows.add(team, usage_row(completion))
        if completion.stream:
            self.live[completion.id] = Live(completion.id)
        return completion

    # --- settle -----------------------------------------------------------------------------------------------

    def usage(self, completion: Completion, completion_tokens: int) -> dict[str, Any]:
        """The ``usage`` block: tokens, ``credits_charged`` and its breakdown (reasoning keys only when non-zero)."""
        reasoning = math.floor(completion.reasoning_ratio * completion_tokens)
        prompt = completion.prompt_tokens
        parts = (
            llm_models.credits(prompt, completion.input_rate),
            llm_models.credits(completion_tokens, completion.output_rate),
            llm_models.credits(reasoning, completion.output_rate),
        )
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion_tokens}
        if reasoning:
            usage["reasoning_tokens"] = reasoning
        usage["total_tokens"] = prompt + completion_tokens + reasoning
        usage["credits_charged"] = float(sum(parts))
        breakdown: dict[str, Any] = {"input_credits": float(parts[0]), "output_credits": float(parts[1])}
        if reasoning:
            breakdown["reasoning_credits"] = float(parts[2])
        usage["breakdown"] = {**breakdown, "model": completion.model, "pricing_version": completion.pricing_version}
        return usage

    def finish(
        self,
        team: Team,
        completion_id: str,
        now: datetime,
        *,
        state: str,
        delivered: int,
        finish_reason: str | None,
        error: dict[str, Any] | None = None,
        bill: bool = True,
    ) -> Completion:
        """Settle once: charge what was delivered (``bill``) or nothing, release the rest, refund the TPM bucket."""
        with self.store.transaction():
            completion: Completion | None = self.store.get(KIND, completion_id)
            if completion is None:  # reset while it ran: nothing left to settle
                raise ResourceNotFoundError(kind="chat completion", id=completion_id)
            if completion.settled:
                return completion
            usage = self.usage(completion, delivered)
            charged = usage["credits_charged"] if bill else 0.0
            if not bill:
                usage = self.usage(completion, 0) | {"credits_charged": 0.0}
                usage["breakdown"] = {**usage["breakdown"], "input_credits": 0.0, "output_credits": 0.0}
            self.ledger.settle(team, completion, charged, now)
            completion.state, completion.delivered, completion.finish_reason = state, delivered, finish_reason
            completion.usage, completion.error, completion.settled, completion.finished_at = usage, error, True, now
            self.store.put(KIND, completion.id, completion, owner=team.id)
            self.store.put(SETTLED, completion.id, now, owner=team.id)
            self.rows.add(team, usage_row(completion))
        refund = completion.prompt_tokens + completion.max_tokens - usage["total_tokens"]
        if refund > 0:
            self.tpm(team, now, -refund)
        live = self.live.pop(completion_id, None)
        if live is not None:
            live.done = True
            live.finished()
        return completion

    # --- read, cancel -----------------------------------------------------------------------------------------

    def find(self, team: Team, completion_id: str, now: datetime) -> Completion | None:
        completion: Completion | None = self.store.get(KIND, completion_id)
        if completion is None or completion.team_id != team.id:
            return None
        if now - completion.created_at > timedelta(days=self.settings.chat_retention_days):
            return None  # retention (§14.13): gone after it, like an unknown id
        return completion

    def get(self, team: Team, completion_id: str, now: datetime) -> Completion:
        completion = self.find(team, completion_id, now)
        if completion is None:
            raise ResourceNotFoundError(kind="chat completion", id=completion_id)
        return completion

    def request_cancel(self, team: Team, completion_id: str, now: datetime) -> Live | Completion:
        """404 / 409 per §5; a stream in flight here gets its cancel flag (the caller waits for it to settle)."""
        completion = self.find(team, completion_id, now)
        if completion is None:
            raise ChatCancelTargetNotFoundError(id=completion_id)
        if completion.terminal:
            raise ChatCancelTargetAlreadyTerminalError(id=completion.id, status=completion.status)
        live = self.live.get(completion.id)
        if not completion.stream or live is None:
            raise ChatCancelTargetNotCancellableError(id=completion.id)
        if live.cancel_at is None:
            live.cancel_at = now
            live.wake()
        return live


def _check_media_url(url: str, param: str, *, allow_data: bool) -> None:
    """Chat media: an ``https://`` URL the SSRF rules allow, or (images only) a ``data:image/…;base64,`` URI."""
    if url.startswith("data:"):
        head = url.partition(",")[0]
        if not allow_data or not head.startswith(DATA_IMAGE) or not head.endswith(";base64"):
            raise InvalidFormatError(BAD_DATA_URI, param=param)
        return
    ssrf.check_url(url, param=param)


def _usable(schema: Any, param: str) -> None:
    try:
        jsonschema_instance.check(schema)
    except jsonschema_instance.SchemaUnusableError as exc:
        raise InvalidFormatError(BAD_SCHEMA.format(param=param, reason=exc), param=param) from None
