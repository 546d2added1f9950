"""The fused-path experiment answers GET /v1/balance as the emulator does: its measurement compares like with like."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from starlette.testclient import TestClient

from tests.conftest import new_api_key

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "experiments" / "fused_balance.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aurous_bench_fused_balance", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _balance_twice(app: object, key: str) -> list[tuple[int, bytes, list[str], int]]:
    """Status, body, header names and journal size after each of two ``GET /v1/balance``."""
    found = []
    with TestClient(app) as client:  # type: ignore[arg-type]
        for _ in range(2):
            answer = client.get("/v1/balance", headers={"X-Api-Key": key})
            journal = client.get("/_mock/journal/count", headers={"X-Api-Key": key}).json()["count"]
            found.append((answer.status_code, answer.content, sorted(answer.headers), journal))
    return found


def test_the_fused_balance_answers_and_journals_like_the_pipeline(monkeypatch) -> None:
    monkeypatch.setenv("AUROUS_MOCK_CLOCK", "virtual")
    fused_balance = _load()
    key = new_api_key()
    shipped, fused = fused_balance.shipped(), fused_balance.fused()
    assert _balance_twice(fused, key) == _balance_twice(shipped, key)
    with TestClient(fused) as client:  # anything unusual goes to the app: the envelope, not the fused answer
        refused = client.get("/v1/balance", headers={"X-Api-Key": "not-a-key"})
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_api_key")
        scripted = client.get("/v1/balance", headers={"X-Api-Key": key, "Aurous-Mock-Scenario": "rate_limit=7"})
        assert (scripted.status_code, scripted.headers["Retry-After"]) == (429, "7")
