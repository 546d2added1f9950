"""The LoRA catalogue: image styles and video LoRAs, looked up by id, slug or legacy UUID."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mockserver.core.errors import ResourceNotFoundError


@dataclass(frozen=True, slots=True)
class Lora:
    """An image LoRA / style (``GET /v1/loras``) or a video LoRA (``GET /v1/video_loras``)."""

    id: str
    name: str
    slug: str | None
    created_at: str
    kind: str = "image"
    is_public: bool = True
    legacy_uuid: str | None = None
    team_id: str | None = None  # a privately delivered LoRA: visible to this team only
    fields: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_public": self.is_public,
            "created_at": self.created_at,
            "slug": self.slug,
            **self.fields,
        }

    def visible_to(self, team_id: str) -> bool:
        return self.is_public or self.team_id == team_id


DEFAULT_LORAS: tuple[Lora, ...] = (
    Lora(
        id="lora_01HXMQ7Z3K8Y2ABCDEFGHJKM",
        name="Golden Hour Photography",
        slug="golden-hour-photography",
        created_at="2026-03-01T00:00:00Z",
        legacy_uuid="a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        fields={
            "description": "Warm, low-sun photographic look with soft shadows.",
            "preview_image_url": "https://cdn.aurous-labs.com/previews/golden-hour.jpg",
            "default_denoise_strength": 0.8,
            "default_guidance_scale": 7.5,
            "default_steps": 30,
            "has_template": True,
        },
    ),
    Lora(
        id="lora_01JB7Q2W8ZK3M4N5P6Q7R8S9TV",
        name="Cinematic Noir",
        slug="cinematic-noir",
        created_at="2026-03-15T00:00:00Z",
        legacy_uuid="3f2b8c1e-7d4a-4e6b-9c0d-5a1e2f3b4c5d",
        fields={
            "description": "High-contrast black and white film still.",
            "preview_image_url": "https://cdn.aurous-labs.com/previews/cinematic-noir.jpg",
            "default_denoise_strength": 0.7,
            "default_guidance_scale": 6.0,
            "default_steps": 28,
            "has_template": False,
        },
    ),
    Lora(
        id="lora_01JC0A1B2C3D4E5F6G7H8J9K0M",
        name="Anime Cel",
        slug="anime-cel",
        created_at="2026-04-02T00:00:00Z",
        fields={
            "description": "Flat cel shading with clean line art.",
            "preview_image_url": "https://cdn.aurous-labs.com/previews/anime-cel.jpg",
            "default_denoise_strength": 0.75,
            "default_guidance_scale": 8.0,
            "default_steps": 32,
            "has_template": True,
        },
    ),
)

DEFAULT_VIDEO_LORAS: tuple[Lora, ...] = (
    Lora(
        id="lora_01JD4S7E3D1A2B3C4D5E6F7G8H",
        name="Seedance 1.0 Pro",
        slug="seedance-1-pro",
        created_at="2026-04-10T00:00:00Z",
        kind="video",
        legacy_uuid="6c1f0b9e-2a3d-4c5e-8f70-91a2b3c4d5e6",
        fields={
            "default_resolution": "1080p",
            "default_ratio": "16:9",
            "default_duration": 5,
            "description": "BytePlus Seedance 1.0 Pro: text-to-video and image-to-video.",
            "preview_video_url": "https://cdn.aurous-labs.com/previews/seedance-1-pro.mp4",
        },
    ),
    Lora(
        id="lora_01JD4S7E3D1A2B3C4D5E6F7G8J",
        name="Seedance 1.0 Lite",
        slug="seedance-1-lite",
        created_at="2026-04-10T00:00:00Z",
        kind="video",
        fields={
            "default_resolution": "720p",
            "default_ratio": "16:9",
            "default_duration": 5,
            "description": "BytePlus Seedance 1.0 Lite: faster, 720p by default.",
            "preview_video_url": "https://cdn.aurous-labs.com/previews/seedance-1-lite.mp4",
        },
    ),
)


class Catalogue:
    """Lookup over a fixed set of LoRAs; another team's private LoRA is indistinguishable from a missing one."""

    def __init__(self, loras: tuple[Lora, ...] = DEFAULT_LORAS, video_loras: tuple[Lora, ...] = DEFAULT_VIDEO_LORAS):
        self.loras = loras
        self.video_loras = video_loras

    def list(self, kind: str, team_id: str) -> list[Lora]:
        rows = self.loras if kind == "image" else self.video_loras
        return [lora for lora in rows if lora.visible_to(team_id)]

    def find(self, kind: str, ref: str, team_id: str) -> Lora | None:
        for lora in self.list(kind, team_id):
            if ref in (lora.id, lora.slug, lora.legacy_uuid):
                return lora
        return None

    def get(self, kind: str, ref: str, team_id: str) -> Lora:
        lora = self.find(kind, ref, team_id)
        if lora is None:
            raise ResourceNotFoundError(kind="video LoRA" if kind == "video" else "LoRA", id=ref)
        return lora
