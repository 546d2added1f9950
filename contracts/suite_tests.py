"""The kit's suites as pytest tests: one test per conformance operation, one per other suite.

Run them against any target, with pytest's own reporting (``--junitxml``, ``-n``, ``-k``)::

    pytest --pyargs contracts.suite_tests --aurous-target http://127.0.0.1:8080
    pytest --pyargs contracts.suite_tests --aurous-target https://api.aurous-labs.com \\
        --aurous-api-key "$AUROUS_API_KEY" --junitxml=contracts.xml

Without ``--aurous-target`` every test is skipped. A failure's message is the kit's summary: each finding with
expected vs actual and the command that replays it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contracts.schema import spec_document
from contracts.suites import SUITES

OPERATIONS = sorted(
    str(operation["operationId"])
    for item in spec_document()["paths"].values()
    for operation in item.values()
    if isinstance(operation, dict) and "operationId" in operation
)


@pytest.mark.real_api
@pytest.mark.parametrize("operation", OPERATIONS)
def test_conformance(aurous_check: Callable[..., Any], operation: str) -> None:
    result = aurous_check(suites=["conformance"], operations=[operation])
    assert result.ok, result.summary()


@pytest.mark.real_api
@pytest.mark.parametrize("suite", [name for name in SUITES if name != "conformance"])
def test_suite(aurous_check: Callable[..., Any], suite: str) -> None:
    result = aurous_check(suites=[suite])
    assert result.ok, result.summary()
