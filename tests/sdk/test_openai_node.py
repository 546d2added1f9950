"""Acceptance: the official ``openai`` Node SDK (npm, under the machine's Node) against a real emulator.

``tests/node/acceptance.mjs`` makes the calls and prints a JSON report; this test starts the emulator, runs it and
checks the report against the emulator's own HTTP answers. ``.ci/run`` installs the package (``npm ci --prefix
tests/node``); when the folder has no ``node_modules`` yet, the test installs it the same way first.

The Node SDK asks for ``encoding_format: "base64"`` when the caller sets none and decodes the answer as base64
float32. The vendor always answers floats (fact sheet aurous-llm-v1.md §13, §14.24), which that decoder garbles;
so the emulator's default (the vendor's) is checked to produce exactly that hazard, and the ``embeddings_base64``
setting to make the SDK's default decode to the right vector.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mockserver.settings import Settings
from mockserver.testing import AurousMock, EmulatorThread

pytestmark = pytest.mark.e2e

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
NODE = shutil.which("node")
NPM = shutil.which("npm")
EMBED = "aurous-embed-vision-1.0"


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    if NODE is None or NPM is None:
        pytest.skip("Node.js (node and npm) is not installed on this machine")
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        subprocess.run([NPM, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300)
    return NODE_DIR / "acceptance.mjs"


def run_script(script: Path, base_url: str, api_key: str) -> dict[str, Any]:
    assert NODE is not None
    env = {**os.environ, "AUROUS_BASE_URL": base_url, "AUROUS_API_KEY": api_key}
    done = subprocess.run([NODE, str(script)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture(scope="module", params=[False, True], ids=["vendor-floats", "base64-honoured"])
def run(request: pytest.FixtureRequest, node_sdk: Path) -> tuple[dict[str, Any], list[float], bool]:
    honoured: bool = request.param
    with EmulatorThread(Settings(clock="virtual", seed=16, embeddings_base64=honoured)) as server:
        mock = AurousMock.fresh(server.base_url)
        report = run_script(node_sdk, server.base_url, mock.api_key)
        expected = mock.client.post("/v1/embeddings", json={"model": EMBED, "input": "The quick brown fox"}).json()
        mock.close()
    return report, expected["data"][0]["embedding"], honoured


def test_embeddings_decode_to_the_right_vector(run: tuple[dict[str, Any], list[float], bool]) -> None:
    report, expected, honoured = run
    assert report["embedding_float"] == expected  # an explicit "float" always works
    if honoured:
        assert report["embedding_default"] == pytest.approx(expected, abs=1e-6)  # float32 precision
    else:
        assert len(report["embedding_default"]) != len(expected)  # the vendor's floats, decoded as base64: garbled


def test_models_and_chat(run: tuple[dict[str, Any], list[float], bool]) -> None:
    report, _, _ = run
    assert report["models"] == ["aurous-embed-vision-1.0", "aurous-grow-2.0-pro"]
    assert report["chat"]["id"].startswith("cmp_")
    assert report["chat"]["content"]
    assert report["chat"]["usage"]["credits_charged"] > 0
    for include_usage in (False, True):
        streamed = report[f"stream_usage_{str(include_usage).lower()}"]
        assert streamed["first_role"] == "assistant"
        assert len(streamed["finish_reasons"]) == 1
        assert streamed["usage"]["completion_tokens"] == math.ceil(len(streamed["text"]) / 4)
    assert report["tool_call"]["finish_reason"] == "tool_calls"
    assert report["tool_call"]["name"] == "get_weather"
    assert isinstance(json.loads(report["tool_call"]["arguments"])["city"], str)
    person = json.loads(report["structured"])
    assert isinstance(person["name"], str)
    assert isinstance(person["age"], int)


def test_typed_errors(run: tuple[dict[str, Any], list[float], bool]) -> None:
    report, _, _ = run
    assert report["auth"] == {"raised": "AuthenticationError", "status": 401, "code": "invalid_api_key"}
    assert report["bad_request"] == {
        "raised": "BadRequestError",
        "status": 400,
        "code": "embeddings_batch_not_supported",
    }
    assert report["not_found"] == {"raised": "NotFoundError", "status": 404, "code": "resource_not_found"}
    assert report["conflict"] == {"raised": "ConflictError", "status": 409, "code": "idempotency_key_in_use"}
    assert report["rate_limit"] == {"raised": "RateLimitError", "status": 429, "code": "tpm_rate_limit_exceeded"}
