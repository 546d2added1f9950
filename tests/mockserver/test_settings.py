"""Tests for mockserver.settings: environment, YAML/TOML config files, precedence and CLI overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mockserver.settings import KeyConfig, Settings, load_settings

YAML = """\
seed: 11
port: 9001
default_credits: 50
keys:
  - key: al_live_from_yaml
    team_id: team_shared
    scope: read
    credits: 5
  - key: og_revoked
    revoked: true
rate_limits:
  get:
    capacity: 3
    per_minute: 60
"""

TOML = """\
seed = 21
port = 9002
legacy_redirects = false

[[keys]]
key = "al_live_from_toml"
billing_mode = "exempt"
default_api_version = "2026-05-15"
"""


@pytest.fixture
def yaml_file(tmp_path: Path) -> Path:
    path = tmp_path / "mock.yaml"
    path.write_text(YAML)
    return path


@pytest.fixture
def toml_file(tmp_path: Path) -> Path:
    path = tmp_path / "mock.toml"
    path.write_text(TOML)
    return path


def test_settings_defaults() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.seed is None
    assert settings.clock == "system"
    assert settings.default_credits == 1000
    assert settings.rate_limits_enabled is True
    assert settings.legacy_redirects is True
    assert settings.control_plane is True
    assert settings.control_token is None
    assert settings.keys == []
    assert settings.loopback_only


def test_settings_read_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUROUS_MOCK_SEED", "7")
    monkeypatch.setenv("AUROUS_MOCK_CLOCK", "virtual")
    monkeypatch.setenv("AUROUS_MOCK_RATE_LIMITS_ENABLED", "false")
    monkeypatch.setenv("AUROUS_MOCK_KEYS", '[{"key": "al_live_env", "scope": "write"}]')
    settings = Settings()
    assert settings.seed == 7
    assert settings.clock == "virtual"
    assert settings.rate_limits_enabled is False
    assert settings.keys == [KeyConfig(key="al_live_env", scope="write")]


def test_settings_env_nested_delimiter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUROUS_MOCK_RATE_LIMITS__GET__CAPACITY", "5")
    monkeypatch.setenv("AUROUS_MOCK_RATE_LIMITS__GET__PER_MINUTE", "10")
    bucket = Settings().rate_limits["get"]
    assert (bucket.capacity, bucket.per_minute) == (5, 10)


def test_settings_ignore_unprefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED", "99")
    monkeypatch.setenv("PORT", "1234")
    settings = Settings()
    assert settings.seed is None
    assert settings.port == 8080


def test_settings_reject_invalid_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUROUS_MOCK_PORT", "70000")
    with pytest.raises(ValidationError):
        Settings()


def test_settings_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Settings(no_such_knob=True)  # type: ignore[call-arg]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_settings_loopback_hosts(host: str) -> None:
    assert Settings(host=host).loopback_only


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.1", "127.example.com", "127.0.0.1.nip.io", "localhost."])
def test_settings_non_loopback_hosts(host: str) -> None:
    assert not Settings(host=host).loopback_only


def test_load_settings_reads_yaml_file(yaml_file: Path) -> None:
    settings = load_settings(yaml_file)
    assert settings.seed == 11
    assert settings.port == 9001
    assert settings.default_credits == 50
    assert settings.config_file == yaml_file
    assert settings.keys == [
        KeyConfig(key="al_live_from_yaml", team_id="team_shared", scope="read", credits=5),
        KeyConfig(key="og_revoked", revoked=True),
    ]
    assert settings.rate_limits["get"].capacity == 3
    assert settings.rate_limits["get"].per_minute == 60


def test_load_settings_reads_toml_file(toml_file: Path) -> None:
    settings = load_settings(str(toml_file))
    assert settings.seed == 21
    assert settings.port == 9002
    assert settings.legacy_redirects is False
    assert settings.keys == [
        KeyConfig(key="al_live_from_toml", billing_mode="exempt", default_api_version="2026-05-15"),
    ]


def test_load_settings_without_file_uses_env_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUROUS_MOCK_SEED", "3")
    settings = load_settings()
    assert settings.seed == 3
    assert settings.port == 8080
    assert settings.config_file is None


def test_load_settings_env_beats_file(monkeypatch: pytest.MonkeyPatch, yaml_file: Path) -> None:
    monkeypatch.setenv("AUROUS_MOCK_SEED", "2")
    settings = load_settings(yaml_file)
    assert settings.seed == 2
    assert settings.port == 9001  # not in the environment: the file still applies


def test_load_settings_override_beats_env_and_file(monkeypatch: pytest.MonkeyPatch, yaml_file: Path) -> None:
    monkeypatch.setenv("AUROUS_MOCK_SEED", "2")
    settings = load_settings(yaml_file, seed=3, port=0)
    assert settings.seed == 3
    assert settings.port == 0
    assert settings.default_credits == 50


def test_load_settings_drops_none_overrides(monkeypatch: pytest.MonkeyPatch, toml_file: Path) -> None:
    monkeypatch.setenv("AUROUS_MOCK_HOST", "127.0.0.9")
    settings = load_settings(toml_file, host=None, port=None, seed=None, speed=None, clock=None)
    assert settings.host == "127.0.0.9"
    assert settings.port == 9002
    assert settings.seed == 21
    assert settings.speed == 1.0
    assert settings.clock == "system"


def test_load_settings_finds_config_file_in_env(monkeypatch: pytest.MonkeyPatch, yaml_file: Path) -> None:
    monkeypatch.setenv("AUROUS_MOCK_CONFIG_FILE", str(yaml_file))
    settings = load_settings(port=1)
    assert settings.seed == 11
    assert settings.port == 1
    assert settings.config_file == yaml_file


def test_load_settings_rejects_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("keys:\n  - key: al_live_x\n    scope: admin\n")
    with pytest.raises(ValidationError):
        load_settings(path)


def test_settings_from_env_config_file_reads_it(monkeypatch: pytest.MonkeyPatch, yaml_file: Path) -> None:
    monkeypatch.setenv("AUROUS_MOCK_CONFIG_FILE", str(yaml_file))
    settings = Settings()
    assert settings.config_file == yaml_file
    assert settings.seed == 11
