"""Target: which URLs count as local, which key is sent, and how the spec binds to each kind of target."""

from __future__ import annotations

import pytest

from contracts.schema import load_schema, spec_path
from contracts.targets import LOCAL_API_KEY, Target


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "http://127.5.0.1"])
def test_target_loopback_url_is_not_live(url):
    target = Target.from_url(url)
    assert target.is_loopback
    assert not target.is_live
    key = target.key()
    assert key is not None
    assert key.startswith(f"{LOCAL_API_KEY}_")
    assert target.key() != key  # a fresh team on every run


@pytest.mark.parametrize("url", ["https://api.aurous-labs.com", "http://10.0.0.5:8080", "http://mock.internal"])
def test_target_anything_else_is_live_and_gets_no_default_key(url):
    target = Target.from_url(url)
    assert target.is_live
    assert target.key() is None
    assert Target.from_url(url, api_key="al_live_x").key() == "al_live_x"


def test_target_in_process_app_is_not_live():
    target = Target("app", app=object())
    assert target.in_process
    assert not target.is_live


def test_schema_binds_http_target_to_its_base_url():
    schema = load_schema(Target.from_url("http://127.0.0.1:9/"))
    assert schema.get_base_url() == "http://127.0.0.1:9"
    assert schema.find_operation_by_id("createImage").method.upper() == "POST"


def test_schema_binds_in_process_target_to_its_app():
    app = object()
    assert load_schema(Target("app", app=app)).app is app


def test_schema_is_found_without_importing_mockserver():
    assert spec_path().name == "openapi.yaml"
