"""``control-openapi.yaml``: a valid OpenAPI 3.1 document that documents exactly the ``/_mock`` routes, and the
emulator's control plane conforms to it (Schemathesis, positive and negative data, on the in-process app)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.routing import Route

from mockserver import Settings, create_app
from mockserver.api.routes import CONTROL
from mockserver.clock import VirtualClock
from mockserver.spec import control_spec_text
from mockserver.webhooks import RecordingSender

SPEC_PATH = Path(__file__).resolve().parent.parent / "control-openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch")
KEY = "al_live_schemathesis_control"


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in document()["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def routed() -> dict[tuple[str, str], str]:
    """(method, path) → route name of every control route, reading through the per-path merge."""
    found: dict[tuple[str, str], str] = {}
    for route in CONTROL:
        assert isinstance(route, Route)
        for method in route.methods or ():
            found[(method, route.path)] = route.name
    return found


def test_control_spec_is_valid_openapi_31() -> None:
    spec = document()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_control_spec_documents_every_control_route_and_only_them() -> None:
    documented = {key: op["operationId"] for key, op in operations().items()}
    assert documented == routed()


def test_control_spec_paths_are_all_under_mock() -> None:
    assert all(path.startswith("/_mock/") for path in document()["paths"])


def test_control_spec_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for op in operations().values()]
    assert len(ids) == len(set(ids))


def test_control_spec_answers_errors_in_the_envelope_with_convention_headers() -> None:
    spec = document()
    for (method, path), op in operations().items():
        for status, response in op["responses"].items():
            if "$ref" in response:
                response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            assert {"Aurous-Request-Id", "Aurous-Version"} <= set(response.get("headers", {})), (method, path, status)
            if not status.startswith("2"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
        assert {"401", "404"} <= set(op["responses"]), (method, path)


def test_control_spec_global_flag_is_documented_where_it_is_read() -> None:
    sources = "".join(
        Path(__file__).resolve().parent.parent.joinpath("mockserver/api", name).read_text(encoding="utf-8")
        for name in ("control.py", "control_state.py", "journal.py", "control_views.py")
    )
    assert re.search(r'flag\(ctx, "global"\)', sources)
    with_global = {
        op["operationId"]
        for op in operations().values()
        if any(p.get("$ref", "").endswith("/Global") for p in op.get("parameters", []))
    }
    assert with_global == {
        "mock_get_clock",
        "mock_advance_clock",
        "mock_set_clock",
        "mock_freeze_clock",
        "mock_unfreeze_clock",
        "mock_reset",
        "mock_create_snapshot",
        "mock_list_snapshots",
        "mock_restore_snapshot",
        "mock_delete_snapshot",
        "mock_clear_journal",
        "mock_list_teams",
    }


def test_control_spec_served_is_the_file() -> None:
    assert control_spec_text() == SPEC_PATH.read_text(encoding="utf-8")


app = create_app(
    Settings(clock="virtual", rate_limits_enabled=False, seed=11, journal_size=20, webhook_background=False),
    clock=VirtualClock(datetime(2026, 6, 1, 12, tzinfo=UTC)),
    sender=RecordingSender(),
)
schema = schemathesis.openapi.from_asgi("/_mock/openapi.yaml", app)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=20, with_security_parameters=False
)


@pytest.mark.slow
@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None, derandomize=True)
def test_control_plane_conforms_to_control_spec(case):
    case.call_and_validate(headers={"X-Api-Key": KEY}, excluded_checks=[positive_data_acceptance])
