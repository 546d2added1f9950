"""Embeddings: validation, the deterministic vector, estimate == charge, the hold, TPM and the usage row.

One request → one vector (fact sheet aurous-llm-v1.md §6). The vector is a deterministic unit vector of the
model's native dimension (§14.15): hashed features (lower-cased words of the text parts, image URLs) plus a small
component drawn from the whole input, so identical input gives the identical vector and inputs sharing words
point in similar directions (cosine similarity means something in a RAG test). ``dimensions`` is validated only.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mockserver.core import ssrf, tokens
from mockserver.core.errors import (
    EmbeddingsBatchNotSupportedError,
    EmbeddingsInputTooLargeError,
    EmbeddingsInputTooManyItemsError,
    EmbeddingsUnsupportedDimensionsError,
    EmbeddingsVideoUnsupportedError,
    InvalidFormatError,
    TpmRateLimitExceededError,
)
from mockserver.core.ledger import Ledger
from mockserver.core.llm_models import EmbeddingCharge, LlmModel, LlmModels, embedding_charge
from mockserver.core.models import Cost, Team
from mockserver.core.ratelimit import Decision, Limiter
from mockserver.core.usage_rows import LlmUsageRow, UsageRows
from mockserver.ids import IdSource

TPM_BUCKET = "llm_tpm"
FEATURES_PER_WORD = 8
NOISE_WEIGHT = 0.05
MSG_DATA_URI = "image_url.url must be an https:// URL; data: URIs are not accepted by embeddings."
_WORD = re.compile(r"\w+")


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)


class _Url(_Body):
    url: Annotated[str, StringConstraints(min_length=1, max_length=ssrf.MAX_URL_LENGTH)]


class TextPart(_Body):
    type: Literal["text"]
    text: Annotated[str, StringConstraints(max_length=1_000_000)]


class ImagePart(_Body):
    type: Literal["image_url"]
    image_url: _Url


class VideoPart(_Body):
    type: Literal["video_url"]
    video_url: dict[str, Any] | None = None


Part = Annotated[TextPart | ImagePart | VideoPart, Field(discriminator="type")]


class EmbeddingRequest(_Body):
    """``POST /v1/embeddings`` and ``/estimate`` (the estimate ignores ``encoding_format`` and ``user``)."""

    model: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    input: (
        Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]
        | Annotated[list[Part], Field(min_length=1)]
    )
    dimensions: Annotated[int, Field(ge=1)] | None = None
    encoding_format: Literal["float", "base64"] | None = None
    user: Annotated[str, StringConstraints(max_length=256)] | None = None


def refuse_batch(raw: dict[str, Any]) -> None:
    """``input: string[]`` is OpenAI's N→N batch: 400 ``embeddings_batch_not_supported`` (before the DTO)."""
    value = raw.get("input")
    if isinstance(value, list) and any(isinstance(item, str) for item in value):
        raise EmbeddingsBatchNotSupportedError(param="input")


@dataclass(frozen=True, slots=True)
class Priced:
    """What a valid request costs: its model, its tokens by modality and the charge (estimate == charge)."""

    model: LlmModel
    slug: str
    tokens: tokens.PromptTokens
    charge: EmbeddingCharge

    def breakdown(self) -> dict[str, Any]:
        parts = {"text": float(self.charge.text), "visual": float(self.charge.visual), "video": 0}
        return {"input": parts, "model": self.slug}


@dataclass(slots=True)
class _Billable:
    """What the ledger holds credits for (``Holdable``): one embeddings request."""

    id: str
    cost: Cost
    hold_id: str | None = None


@dataclass(slots=True)
class Created:
    """A served embedding: the response body and the TPM decision for the headers."""

    body: dict[str, Any]
    tpm: Decision
    row_id: str = field(default="")


def _check_parts(model: LlmModel, parts: list[TextPart | ImagePart | VideoPart]) -> None:
    """Video first, then the part caps (sheet §6.1), then every image URL (SSRF rules; no ``data:``)."""
    if any(isinstance(p, VideoPart) for p in parts):
        raise EmbeddingsVideoUnsupportedError(param="input")
    cap = model.max_parts or len(parts)
    if len(parts) > cap:
        raise EmbeddingsInputTooManyItemsError(param="input", count=len(parts), cap=cap)
    images = [p for p in parts if isinstance(p, ImagePart)]
    image_cap = model.max_image_parts or len(images)
    if len(images) > image_cap:
        message = f"Embedding request has {len(images)} image parts; the cap is {image_cap} images per request."
        raise EmbeddingsInputTooManyItemsError(message, param="input")
    for index, part in enumerate(parts):
        if isinstance(part, ImagePart):
            param = f"input[{index}].image_url.url"
            if part.image_url.url.lower().startswith("data:"):
                raise InvalidFormatError(MSG_DATA_URI, param=param)
            ssrf.check_url(part.image_url.url, param=param)


def vector(req: EmbeddingRequest, dimension: int) -> list[float]:
    """The deterministic unit vector of ``req.input`` (see the module docstring)."""
    parts = [req.input] if isinstance(req.input, str) else req.input
    values = [0.0] * dimension
    for part in parts:
        features: list[str]
        if isinstance(part, str):
            features = [w.lower() for w in _WORD.findall(part)]
        elif isinstance(part, TextPart):
            features = [w.lower() for w in _WORD.findall(part.text)]
        elif isinstance(part, ImagePart):
            features = ["image:" + part.image_url.url]
        else:
            features = []
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=2 * FEATURES_PER_WORD * 4).digest()
            for i in range(FEATURES_PER_WORD):
                slot, sign = struct.unpack_from("<II", digest, 8 * i)
                values[slot % dimension] += 1.0 if sign & 1 else -1.0
    whole = hashlib.sha256(orjson.dumps(_canonical(req), option=orjson.OPT_SORT_KEYS)).digest()
    noise = random.Random(int.from_bytes(whole, "big"))
    scale = math.sqrt(sum(v * v for v in values)) or 1.0
    values = [v / scale + NOISE_WEIGHT * noise.gauss(0.0, 1.0) / math.sqrt(dimension) for v in values]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def _canonical(req: EmbeddingRequest) -> Any:
    if isinstance(req.input, str):
        return req.input
    return [part.model_dump() for part in req.input]


def encode_base64(values: list[float]) -> str:
    """OpenAI's ``encoding_format: "base64"``: little-endian float32, base64 (only with ``embeddings_base64``)."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


class Embeddings:
    """``POST /v1/embeddings`` and its estimate; the vendor documents no hold for embeddings: hold = estimate."""

    def __init__(
        self,
        models: LlmModels,
        ledger: Ledger,
        limiter: Limiter,
        rows: UsageRows,
        ids: IdSource,
        *,
        honour_base64: bool = False,
    ) -> None:
        self.models = models
        self.ledger = ledger
        self.limiter = limiter
        self.rows = rows
        self.ids = ids
        self.honour_base64 = honour_base64

    def price(self, req: EmbeddingRequest) -> Priced:
        """Validation in the documented order (model, kind, dimensions, video, caps, size), then the charge."""
        model = self.models.resolve(req.model, "embedding")
        if req.dimensions is not None and req.dimensions not in (model.dimensions or ()):
            supported = ", ".join(str(d) for d in model.dimensions or ()) or "none"
            raise EmbeddingsUnsupportedDimensionsError(
                param="dimensions", dimensions=req.dimensions, model=req.model, supported=supported
            )
        if not isinstance(req.input, str):
            _check_parts(model, req.input)
        counted = tokens.count_embedding_input(req.input if isinstance(req.input, str) else _parts_raw(req))
        if counted.total > model.context_window:
            raise EmbeddingsInputTooLargeError(param="input", tokens=counted.total, limit=model.context_window)
        charge = embedding_charge(model, counted.text, counted.image)
        return Priced(model, req.model, counted, charge)

    def estimate(self, req: EmbeddingRequest) -> dict[str, Any]:
        priced = self.price(req)
        counted = priced.tokens
        return {
            "estimated": True,
            "tokens": {"text": counted.text, "image": counted.image, "video": 0, "total": counted.total},
            "credits_estimated": float(priced.charge.total),
            "breakdown": priced.breakdown(),
        }

    def tpm_peek(self, team: Team, now: datetime) -> Decision:
        return self.limiter.take(team.id, TPM_BUCKET, now, 0.0)

    def create(self, team: Team, req: EmbeddingRequest, now: datetime, meta: dict[str, Any]) -> Created:
        """Price, debit TPM (429 ``tpm_rate_limit_exceeded``), hold (402), embed, commit, write the ``emb_`` row."""
        priced = self.price(req)
        tpm = self.limiter.take(team.id, TPM_BUCKET, now, priced.tokens.total)
        if not tpm.allowed:
            error = TpmRateLimitExceededError(retry_after=tpm.retry_after)
            error.headers.update({"Retry-After": str(tpm.retry_after), **tpm.headers("X-RateLimit-TPM")})
            raise error
        amount = float(priced.charge.total)
        billable = _Billable(self.ids.new("emb", at=now, scope=team.id), Cost(amount=amount, base=amount, enhance=0))
        if amount > 0:
            self.ledger.hold(team, billable, now)
        values = vector(req, priced.model.native_dimension or 0)
        self.ledger.commit(team, billable, now)
        self.rows.add(
            team,
            LlmUsageRow(
                id=billable.id,
                type="embedding",
                model=req.model,
                status="completed",
                created_at=now,
                completed_at=now,
                input_tokens=priced.tokens.total,
                output_tokens=0,
                credits_charged=amount,
                api_key_id=meta.get("api_key_id"),
                request_id=str(meta.get("request_id", "")),
            ),
        )
        encoded: list[float] | str = values
        if self.honour_base64 and req.encoding_format == "base64":
            encoded = encode_base64(values)
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": encoded}],
            "model": req.model,
            "usage": {
                "prompt_tokens": priced.tokens.total,
                "total_tokens": priced.tokens.total,
                "credits_charged": amount,
                "breakdown": priced.breakdown(),
            },
        }
        return Created(body, tpm, billable.id)


def _parts_raw(req: EmbeddingRequest) -> list[dict[str, Any]]:
    assert not isinstance(req.input, str)
    return [part.model_dump() for part in req.input]
