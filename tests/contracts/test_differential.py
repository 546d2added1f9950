"""Differential mode: the same requests to two targets, and what they answered differently."""

from __future__ import annotations

import json

import pytest

from contracts import Target, check
from contracts.differential import compare, compare_traces, shape_differences
from contracts.drift import DriftProxy
from contracts.exchanges import Exchange, shape
from contracts.report import render_markdown
from contracts.suites import SUITES
from tests.contracts.emulators import emulator

CONFORMANCE_OPERATIONS = ["createImage", "getBalance"]
HEADERS = ("aurous-request-id", "aurous-version")


def answer(status: int, body, step: str = "poll", headers=HEADERS, content_type="application/json") -> Exchange:
    return Exchange(step, "GET", "/v1/images/img_1", status, shape(body), headers, "curl …", content_type)


def generation(status: str, **extra) -> dict:
    return {"object": "inference", "id": "img_01", "status": status, "completed_at": None, **extra}


@pytest.fixture
def probe(monkeypatch):
    """A known scripted suite: create an image and poll it to the end (tests/contracts/probe_suite.py)."""
    monkeypatch.setitem(SUITES, "probe", "tests.contracts.probe_suite")


# -- the equivalences ---------------------------------------------------------------------------------------------


def test_shape_null_matches_a_value_and_ids_instants_prices_are_not_compared():
    a = generation("succeeded", completed_at="2026-06-01T12:00:30Z", cost={"amount": 2})
    b = generation("succeeded", id="img_02", cost={"amount": 7.5})
    assert shape_differences(shape(a), shape(b)) == []


def test_shape_enum_values_are_compared_and_paths_named():
    assert shape_differences(shape(generation("pending")), shape(generation("queued"))) == [
        ("$.status", '"pending"', '"queued"')
    ]
    errors = shape({"error": {"code": "not_found"}}), shape({"error": {"code": "resource_not_found"}})
    assert shape_differences(*errors) == [("$.error.code", '"not_found"', '"resource_not_found"')]


def test_shape_a_key_on_one_side_only_is_a_difference():
    renamed = generation("pending")
    renamed["state"] = renamed.pop("status")
    assert shape_differences(shape(generation("pending")), shape(renamed)) == [
        ("$.state", "absent", "a string"),
        ("$.status", '"pending"', "absent"),
    ]


def test_shape_lists_empty_matches_any_and_items_are_merged():
    assert shape_differences(shape({"data": []}), shape({"data": [generation("pending")]})) == []
    # Which items exist and how far each got is state: mixed statuses are compared by type only.
    mixed = shape({"data": [generation("pending"), generation("succeeded")]})
    assert shape_differences(mixed, shape({"data": [generation("failed")]})) == []
    # But a structural difference inside the items is still found.
    assert shape_differences(mixed, shape({"data": [{**generation("failed"), "id": 5}]})) == [
        ("$.data[].id", "a string", "a number")
    ]


def test_compare_status_first_then_shape_and_headers():
    (status,) = compare(answer(201, generation("pending")), answer(200, {"id": "x"}))
    assert (status.failure, status.a, status.b) == ("DifferentStatus", "201", "200")
    (headers,) = compare(answer(200, {}), answer(200, {}, headers=("aurous-version",), content_type="text/plain"))
    assert headers.failure == "DifferentHeaders"
    assert "Aurous-Request-Id only on A" in headers.title
    assert "Content-Type application/json vs text/plain" in headers.title
    assert compare(answer(200, generation("pending")), answer(200, generation("pending"))) == []


def test_compare_a_429_on_one_side_only_is_not_compared():
    # Rate limits are per team and per moment: a 429 says nothing about the request's contract.
    assert compare(answer(201, generation("pending")), answer(429, {"error": {"code": "rate_limited"}})) == []


def test_compare_traces_collapses_polling_so_only_skipped_states_count():
    def polls(*statuses: str) -> list[Exchange]:
        return [answer(201, generation("pending"), step="create")] + [
            answer(200, generation(status)) for status in statuses
        ]

    # Same states, different number of polls: timing, not drift.
    slow = polls("pending", "processing", "processing", "processing", "succeeded")
    fast = polls("processing", "succeeded")
    assert compare_traces(slow, fast) == []
    # A state seen on one side only is reported, with both sequences.
    (skipped,) = compare_traces(polls("pending", "processing", "succeeded"), polls("pending", "succeeded"))
    assert skipped.failure == "DifferentStateSequence"
    assert (skipped.a, skipped.b) == ("pending → processing → succeeded", "pending → succeeded")
    assert "seen on one side only: processing" in skipped.message
    (ends,) = compare_traces(polls("processing", "succeeded"), polls("processing", "failed"))
    assert (ends.failure, ends.step) == ("DifferentStateSequence", "poll")


def test_compare_traces_reports_different_steps_and_compares_the_common_ones():
    a = [answer(201, {}, step="create"), answer(200, generation("succeeded"), step="poll"), answer(200, {}, "output")]
    b = [answer(200, {}, step="create"), answer(200, generation("succeeded"), step="poll")]
    found = {(item.failure, item.step) for item in compare_traces(a, b)}
    assert found == {("DifferentSteps", None), ("DifferentStatus", "create")}
    (steps,) = [item for item in compare_traces(a, b) if item.failure == "DifferentSteps"]
    assert (steps.a, steps.b) == ("create → poll → output", "create → poll")


# -- check(..., against=) -----------------------------------------------------------------------------------------


def test_differential_emulator_against_the_same_emulator_has_no_difference(probe):
    result = check(
        Target("emulator", app=emulator()),
        against=Target("twin", app=emulator()),
        suites=["conformance", "probe"],
        operations=[*CONFORMANCE_OPERATIONS, "probe"],
        max_examples=1,
    )
    assert result.exit_code == 0, result.summary()
    assert result.against == "twin"
    compared = result.suite("differential")
    assert compared.cases > 100  # every conformance case, plus the probe's steps
    assert {operation.operation for operation in compared.operations} >= {"conformance: POST /v1/images", "probe"}
    assert result.suite("conformance", target="twin").cases == result.suite("conformance").cases
    # Each target's run keeps its own account; together they are what the run spent.
    assert result.suite("conformance").spent == result.suite("conformance", target="twin").spent > 0
    assert sum(suite.spent for suite in result.suites) == result.spent


def test_differential_rename_field_is_a_different_shape_naming_the_paths(probe):
    result = check(
        Target("emulator", app=emulator()),
        against=Target("drifted", app=DriftProxy(emulator(), ["rename-field"])),
        suites=["conformance", "probe"],
        operations=["createImage", "probe"],
        max_examples=1,
    )
    assert result.exit_code == 1
    shapes = [finding for finding in result.suite("differential").findings if finding.failure == "DifferentShape"]
    assert {finding.operation for finding in shapes} >= {"conformance: POST /v1/images", "probe: create image"}
    assert all("$.created," in finding.title and "$.created_at" in finding.title for finding in shapes)
    assert "$.created_at: a string" in shapes[0].expected
    assert "$.created_at: absent" in shapes[0].actual
    assert shapes[0].curl
    assert shapes[0].against_curl
    assert "--against drifted" in (shapes[0].replay or "")
    # The second target's own findings are reported too, labelled with it.
    own = result.suite("conformance", target="drifted").findings
    assert {(finding.failure, finding.target) for finding in own} == {("JsonSchemaError", "drifted")}
    assert not result.suite("conformance").findings


def test_differential_wrong_status_is_a_different_status():
    result = check(
        Target("emulator", app=emulator()),
        against=Target("drifted", app=DriftProxy(emulator(), ["wrong-status"])),
        suites=["conformance"],
        operations=["createImage"],
        max_examples=1,
    )
    statuses = [finding for finding in result.suite("differential").findings if finding.failure == "DifferentStatus"]
    assert [(finding.title, finding.expected, finding.actual) for finding in statuses] == [
        ("HTTP 201 vs 200", "201", "200")
    ]
    markdown = render_markdown(result)
    assert "| | A `emulator` | B `drifted` |" in markdown
    assert "| DifferentStatus | `201` | `200` |" in markdown
    assert "Request to A:" in markdown
    assert "Request to B:" in markdown


@pytest.mark.parametrize(
    ("timings", "expected"),
    [
        # B finishes processing in no time: it is never seen `processing` — a state-sequence difference.
        ({"image_processing_seconds": 0}, [("DifferentStateSequence", "pending → succeeded")]),
        # B is only slower: more polls, the same states — no difference.
        ({"image_processing_seconds": 40}, []),
    ],
    ids=["skips-processing", "only-slower"],
)
def test_differential_timings_matter_only_when_a_state_is_skipped(probe, timings, expected):
    a_timings = {"image_pending_seconds": 1, "image_processing_seconds": 10}
    result = check(
        Target("emulator", app=emulator(**a_timings)),
        against=Target("other", app=emulator(**{**a_timings, **timings})),
        suites=["probe"],
    )
    found = [(finding.failure, finding.actual) for finding in result.findings]
    assert found == expected, result.summary()
    if expected:
        (finding,) = result.findings
        assert finding.expected == "pending → processing → succeeded"
        assert finding.operation == "probe: poll until terminal"


def test_differential_budget_caps_what_both_targets_spend_together(probe):
    result = check(
        Target("emulator", app=emulator()),
        against=Target("other", app=emulator()),
        suites=["probe"],
        max_credits=1,
    )
    # One image costs 1 credit on each target: the first fits, the second would cross the cap.
    assert result.spent == 1
    assert result.aborted is not None
    assert "cap of 1" in result.aborted
    assert result.suite("probe").spent == 1


def test_differential_report_json_labels_findings_with_their_target(tmp_path):
    result = check(
        Target("emulator", app=emulator()),
        against=Target("drifted", app=DriftProxy(emulator(), ["drop-header"])),
        suites=["conformance"],
        operations=["getBalance"],
        max_examples=1,
        report_dir=tmp_path,
    )
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["against"] == "drifted"
    suites = {(suite["name"], suite["target"]) for suite in data["suites"]}
    assert suites == {("conformance", None), ("conformance", "drifted"), ("differential", None)}
    junit = (tmp_path / "junit.xml").read_text()
    assert 'name="conformance [drifted]"' in junit
    assert 'type="DifferentHeaders"' in junit
    assert result.exit_code == 1
