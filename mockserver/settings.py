"""Settings: environment (``AUROUS_MOCK_*``), an optional YAML/TOML config file, and CLI overrides.

Read once, in ``cli.main`` or ``create_app``, and passed down; nothing reads ``os.environ`` elsewhere.
Precedence, highest first: explicit arguments (CLI), environment, config file, defaults.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from mockserver.store import MEMORY, parse_store_url

Scope = Literal["read", "write", "full"]
CONFIG_ENV = "AUROUS_MOCK_CONFIG_FILE"
# How ``serve --workers N`` hands its resolved settings to the worker processes it spawns (see ``cli.py``).
HANDOFF_ENV = "AUROUS_MOCK_WORKER_SETTINGS"


class KeyConfig(BaseModel):
    """An API key declared up front, with the team it belongs to."""

    key: str
    team_id: str | None = None
    team_name: str | None = None
    credits: float | None = None
    scope: Scope = "full"
    revoked: bool = False
    billing_mode: str = "metered"
    default_api_version: str | None = None
    billing_email: str | None = None


class BucketConfig(BaseModel):
    capacity: int = Field(ge=1)
    per_minute: float = Field(gt=0)


class LlmModelConfig(BaseModel):
    """Overrides of one LLM catalogue row (``llm_models`` setting, keyed by slug); unset fields keep the default."""

    model_config = ConfigDict(extra="forbid")

    context_window: int | None = Field(default=None, ge=1)
    default_max_output_tokens: int | None = Field(default=None, ge=1)
    max_output_tokens_hard_cap: int | None = Field(default=None, ge=1)
    capabilities: list[str] | None = None
    aliases: list[str] | None = None
    pricing_version: int | None = Field(default=None, ge=1)
    input_rate: float | None = Field(default=None, ge=0, description="Chat input credits per 1M tokens")
    output_rate: float | None = Field(default=None, ge=0, description="Chat output/reasoning credits per 1M tokens")
    text_rate: float | None = Field(default=None, ge=0, description="Embedding text credits per 1M tokens")
    visual_rate: float | None = Field(default=None, ge=0, description="Embedding image credits per 1M tokens")
    dimensions: list[int] | None = None


class Settings(BaseSettings):
    """Every knob of the emulator. Environment variables use the ``AUROUS_MOCK_`` prefix."""

    model_config = SettingsConfigDict(env_prefix="AUROUS_MOCK_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    seed: int | None = None
    clock: Literal["system", "virtual"] = "system"
    speed: float = Field(default=1.0, gt=0)
    clock_start: datetime | None = Field(
        default=None,
        description="The base clock's first instant; default: now, or 2026-06-01T00:00:00Z for a seeded virtual clock",
    )
    public_url: str | None = Field(
        default=None, description="Base URL written into output URLs; default: the URL the client called."
    )
    store: str = Field(
        default=MEMORY,
        description="Where state lives: memory, sqlite:///path.db (survives restarts) or redis://host:port/db (shared)",
    )

    # Teams and keys
    default_credits: float = Field(default=1000.0, ge=0)
    default_scope: Scope = "full"
    default_billing_mode: str = "metered"
    keys: list[KeyConfig] = Field(default_factory=list)
    strict_keys: bool = Field(
        default=False,
        description="Only declared keys (keys:, POST /_mock/keys) authenticate the public API; others get 401",
    )

    # Conventions
    rate_limits_enabled: bool = True
    rate_limits: dict[str, BucketConfig] = Field(default_factory=dict)
    idempotency_ttl_seconds: float = Field(default=86400, gt=0)
    idempotency_replay: Literal["terminal", "immediate"] = Field(
        default="terminal",
        description="A retry of a generation create replays once the original is terminal (409 before), or at once",
    )
    idempotency_lease_seconds: float = Field(
        default=120, gt=0, description="Real seconds before a key in flight whose request never ended is free again"
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="JSON bodies; 413 beyond")
    max_upload_bytes: int = Field(default=11 * 1024 * 1024, ge=1024, description="Any body (uploads); 413 beyond")
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, description="Request line and headers; 431 beyond")
    max_url_bytes: int = Field(default=8 * 1024, ge=256, description="Path and query string; 414 beyond")
    legacy_redirects: bool = True
    legacy_after_sunset: Literal["not_found", "redirect"] = Field(
        default="not_found",
        description="Legacy routes and /docs past their Sunset (2026-08-04, caller's clock): 404, or still 308",
    )

    # Generations (the lifecycle, outputs, statuses)
    emit_v11_statuses: bool = False
    output_ttl_image_seconds: float = Field(default=86400, gt=0)
    output_ttl_video_seconds: float = Field(default=86400, gt=0)
    output_token_ttl_seconds: float = Field(default=86400, gt=0)
    generation_speed: float = Field(default=1.0, gt=0, description="Divides every simulated processing time.")
    image_pending_seconds: float | None = Field(default=None, ge=0, description="Fixed; default 1-3 s")
    image_processing_seconds: float | None = Field(default=None, ge=0, description="Fixed; default 9-27 s")
    video_pending_seconds: float | None = Field(default=None, ge=0, description="Fixed; default 2-6 s")
    video_processing_seconds: float | None = Field(default=None, ge=0, description="Fixed; default by size")
    character_synthesis_seconds: float | None = Field(default=None, ge=0, description="Fixed; default 30-90 s")
    anonymous_outputs: bool = Field(default=False, description="Serve output URLs without token or key")
    media_cache_dir: Path | None = None
    media_cache_max_bytes: int = Field(default=2 * 1024**3, ge=1024 * 1024)
    signing_key: str = "aurous-mock-signing-key"

    # Webhooks (reference §5; the schedule, the callback signing and the log are emulator choices)
    webhook_allow_http_loopback: bool = Field(default=True, description="Allow http:// webhook URLs on loopback")
    webhook_retry_schedule: list[float] = Field(
        default_factory=lambda: [0.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0, 86400.0],
        min_length=1,
        description="Seconds from a delivery's first attempt to each attempt (non-decreasing); then it fails.",
    )
    webhook_timeout_seconds: float = Field(default=10, gt=0, description="A receiver must answer 2xx within this")
    webhook_disable_after_failures: int = Field(default=20, ge=1, description="With no success in 24 h")
    webhook_sign_callbacks: bool = Field(default=True, description="Sign webhook_url callbacks with an endpoint secret")
    webhook_log_limit: int = Field(default=1000, ge=1, description="Attempts (and events) kept per team")
    webhook_background: bool = Field(default=True, description="Deliver from a lifespan task; off: only on flush")
    webhook_poll_seconds: float = Field(default=0.05, gt=0)
    webhook_max_in_flight: int = Field(default=32, ge=1)
    balance_low_threshold: float | None = Field(default=None, ge=0, description="usage.balance_low at or below this")

    # Control plane
    control_plane: bool = True
    control_token: str | None = None
    journal_size: int = Field(default=1000, ge=0, description="Requests kept per team by /_mock/journal; 0: off")
    journal_max_bytes: int = Field(default=16 * 1024**2, ge=1024, description="Bytes kept per team by the journal")

    # Scenarios (scripted outcomes; see README "Scenarios")
    scenarios_file: Path | None = Field(default=None, description="YAML scenario rules for every team (--scenarios)")

    # LLM surfaces (fact sheet aurous-llm-v1.md §14): catalogue overrides per model slug
    llm_models: dict[str, LlmModelConfig] = Field(default_factory=dict)
    embeddings_base64: bool = Field(
        default=False,
        description="Honour encoding_format=base64 on /v1/embeddings (the vendor always returns floats; §14.24)",
    )
    # Chat completions (fact sheet §3.9, §14): timing applies under the system clock; the virtual clock streams at once
    chat_time_to_first_token_ms: float = Field(default=250, ge=0, description="Real-time wait before the first token")
    chat_tokens_per_second: float = Field(default=80, gt=0, description="Streaming pace after the first token")
    chat_keepalive_seconds: float = Field(default=15, gt=0, description="': keep-alive' comment while nothing is sent")
    chat_retention_days: float = Field(default=30, gt=0, description="GET /v1/chat/completions/{id} answers 404 after")
    chat_reasoning_ratios: dict[str, float] = Field(
        default_factory=lambda: {"minimal": 0.0, "low": 0.25, "medium": 0.5, "high": 1.0},
        description="reasoning_tokens = ratio × completion_tokens, by reasoning_effort (default medium)",
    )
    chat_max_schema_bytes: int = Field(default=64 * 1024, ge=1, description="response_format_too_large beyond")
    chat_max_schema_depth: int = Field(default=10, ge=1, description="response_format_too_deep beyond")
    chat_idempotency_key_max_64: bool = Field(default=False, description="Enforce the chat page's 64-character keys")

    config_file: Path | None = Field(default=None, description="YAML or TOML file read below the environment.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then ``AUROUS_MOCK_*``, then the config file named by either of them."""
        named = getattr(init_settings, "init_kwargs", {}).get("config_file") or os.environ.get(CONFIG_ENV)
        if not named:
            return (init_settings, env_settings)
        path = Path(named)
        if path.suffix == ".toml":
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=path))
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=path))

    @field_validator("store")
    @classmethod
    def _store_is_a_known_url(cls, value: str) -> str:
        parse_store_url(value)  # ValueError names the accepted forms
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_never_goes_back(cls, value: list[float]) -> list[float]:
        if any(v < 0 for v in value) or any(b < a for a, b in itertools.pairwise(value)):
            raise ValueError("webhook_retry_schedule must be non-negative and non-decreasing")
        return value

    @property
    def loopback_only(self) -> bool:
        """Whether ``host`` binds loopback only: ``localhost`` or a loopback address (not a name like ``127.x.com``)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings from a config file (YAML or TOML by extension), the environment and ``overrides``.

    Overrides whose value is ``None`` are dropped, so CLI options left unset fall through.
    """
    explicit = {name: value for name, value in overrides.items() if value is not None}
    if config_file is not None:
        explicit["config_file"] = Path(config_file)
    return Settings(**explicit)


def hand_off(settings: Settings) -> None:
    """Put ``settings`` where worker processes started from now on find them (:func:`handed_off`)."""
    os.environ[HANDOFF_ENV] = settings.model_dump_json()


def handed_off() -> Settings:
    """The settings :func:`hand_off` left for this worker process, exactly (no other source is read)."""
    return Settings.model_validate_json(os.environ[HANDOFF_ENV])
