"""Request bodies of the generation operations, validated exactly as ``openapi.yaml`` states.

Strict types (no ``"5"`` for 5) so that schema-violating input is rejected like the spec says; an
explicit ``null`` is refused before these models see it (``api.pipeline.validate``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Prompt = Annotated[str, StringConstraints(min_length=1, max_length=4000, pattern=r"\S")]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Seed = Annotated[int, Field(ge=-1, le=4_294_967_295)]
SizePreset = Literal[
    "square", "landscape", "portrait", "hd_square", "hd_landscape", "hd_portrait",
    "2k_1_1", "2k_3_2", "2k_2_3", "2k_4_3", "2k_3_4", "2k_16_9", "2k_9_16", "2k_21_9",
    "4k_1_1", "4k_3_2", "4k_2_3", "4k_4_3", "4k_3_4", "4k_16_9", "4k_9_16", "4k_21_9",
]  # fmt: skip
Resolution = Literal["480p", "720p", "1080p"]
Ratio = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9"]


class Body(BaseModel):
    """Unknown keys are ignored (inferred); every declared type is strict."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)


class ImageRequest(Body):
    prompt: Prompt
    negative_prompt: Annotated[str, StringConstraints(min_length=1, max_length=4000)] | None = None
    lora_id: Ref | None = None
    character_id: Ref | None = None
    reference_image_urls: Annotated[list[Url], Field(max_length=4)] | None = None
    size: SizePreset | None = None
    width: Annotated[int, Field(ge=1024, le=4096)] | None = None
    height: Annotated[int, Field(ge=1024, le=4096)] | None = None
    steps: Annotated[int, Field(ge=1, le=100)] | None = None
    guidance_scale: Annotated[float, Field(ge=0.1, le=30)] | None = None
    cfg_rescale: Annotated[float, Field(ge=0, le=1)] | None = None
    denoise_strength: Annotated[float, Field(ge=0, le=1)] | None = None
    seed: Seed | None = None
    count: Annotated[int, Field(ge=1, le=4)] | None = None
    enhance_prompt: bool | None = None
    webhook_url: Url | None = None


class VideoRequest(Body):
    video_lora_id: Ref
    prompt: Annotated[str, StringConstraints(max_length=4000)] | None = None
    first_frame_url: Url | None = None
    last_frame_url: Url | None = None
    resolution: Resolution | None = None
    ratio: Ratio | None = None
    duration: Annotated[int, Field(ge=2, le=12)] | None = None
    seed: Seed | None = None
    camera_fixed: bool | None = None
    watermark: bool | None = None
    enhance_prompt: bool | None = None
    webhook_url: Url | None = None
