"""Every named drift of the drift proxy is reported, alone and together with any other one, as its own finding."""

from __future__ import annotations

from itertools import combinations

import pytest

from contracts import Target, check
from contracts.drift import DRIFTS, DriftProxy
from contracts.report import Finding
from mockserver.cli import main
from mockserver.webhooks import HttpxSender
from tests.contracts.emulators import emulator

# drift → (suite, operations it needs, the finding that shows it, a text its expected/actual/message holds)
SHOWN_BY: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "undocumented-enum": ("conformance", ("createImage",), "JsonSchemaError", "queued"),
    "rename-field": ("conformance", ("createImage",), "JsonSchemaError", "created_at"),
    "drop-header": ("conformance", ("getBalance",), "MissingRequestId", "Aurous-Request-Id"),
    "wrong-status": ("conformance", ("createImage",), "UndefinedStatusCode", "HTTP 200"),
    "bad-signature-secret": ("webhooks", (), "WebhookSignatureInvalid", "Aurous-Webhook-Signature"),
    "never-expire": ("workflows", ("image_create_poll_output",), "OutputNeverExpires", "410"),
    "overcharge": ("workflows", ("image_create_poll_output",), "ChargedMoreThanEstimated", "estimate"),
}
PAIRS = list(combinations(DRIFTS, 2))


def _shows(finding: Finding, failure: str, text: str) -> bool:
    said = " ".join(filter(None, (finding.expected, finding.actual, finding.message, finding.title)))
    return finding.failure == failure and text in said


def _run(drifts: tuple[str, ...]) -> list[Finding]:
    suites = {SHOWN_BY[name][0] for name in drifts}
    operations = {op for name in drifts for op in SHOWN_BY[name][1]}
    webhooks = "webhooks" in suites
    if webhooks:
        operations |= {"createWebhookEndpoint", "image.completed", "generationCallback"}
    upstream = emulator(HttpxSender()) if webhooks else emulator()
    result = check(
        Target("drifted", app=DriftProxy(upstream, drifts)),
        suites=[name for name in ("conformance", "workflows", "webhooks") if name in suites],
        operations=operations,
        max_examples=1,
        # Every drift of the conformance suite is in a 2xx answer: the schema's examples and one fuzzed case per mode
        # show it (the single-drift tests of test_drift.py run the coverage phase's ~1000 cases too).
        options={"phases": "examples,fuzzing"},
    )
    assert result.exit_code == 1, result.summary()
    return result.findings


def test_every_drift_has_a_finding_that_shows_it():
    assert set(SHOWN_BY) == set(DRIFTS)


@pytest.mark.slow
# The in-process emulator's real webhook sender may leave a delivery connection for the garbage collector to close;
# that is no part of what is tested here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("pair", PAIRS, ids=["+".join(pair) for pair in PAIRS])
def test_check_reports_each_drift_of_a_pair_as_its_own_finding(pair):
    findings = _run(pair)
    for name in pair:
        _, _, failure, text = SHOWN_BY[name]
        assert any(_shows(finding, failure, text) for finding in findings), (
            name,
            [(f.failure, f.operation, f.expected, f.actual) for f in findings],
        )


def test_an_unknown_conformance_phase_is_refused_before_anything_is_sent():
    with pytest.raises(ValueError, match="unknown conformance phase 'shrinking'"):
        check(Target("emulator", app=emulator()), suites=["conformance"], options={"phases": "examples,shrinking"})


def test_cli_check_refuses_an_unknown_phase_with_status_2(capsys):
    assert main(["check", "--target", "http://127.0.0.1:1", "--phases", "coverage,shrinking"]) == 2
    assert "unknown conformance phase 'shrinking'" in capsys.readouterr().err
