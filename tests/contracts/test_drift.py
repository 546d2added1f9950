"""The drift proxy: each named drift rewrites what it says, and the kit reports each with the right finding."""

from __future__ import annotations

import shlex

import pytest
from starlette.testclient import TestClient

from contracts import Target, check
from contracts import drift as drift_module
from contracts.drift import DRIFTS, DriftProxy, parse_drifts
from contracts.signature import SignatureMismatchError, verify_signature
from contracts.suites import SUITES
from mockserver.cli import _parser, main
from mockserver.webhooks import HttpxSender, RecordingSender
from tests.contracts.emulators import emulator

KEY = {"X-Api-Key": "al_live_drift_tests_0000000000000000"}
HOOK = "https://hooks.example.com/aurous"


def client(*drifts: str, sender: RecordingSender | None = None) -> TestClient:
    return TestClient(DriftProxy(emulator(sender), drifts), base_url="http://proxy.test")


def finished_image(http: TestClient) -> dict:
    created = http.post("/v1/images", json={"prompt": "a lighthouse"}, headers=KEY).json()
    http.post("/_mock/clock/advance", json={"seconds": 120}, headers=KEY)
    return http.get(f"/v1/images/{created['id']}", headers=KEY).json()


# -- the proxy itself ---------------------------------------------------------------------------------------------


def test_drift_proxy_without_drifts_forwards_answers_unchanged():
    with client() as http:
        created = http.post("/v1/images", json={"prompt": "a lighthouse"}, headers=KEY)
        assert created.status_code == 201
        assert created.json()["status"] == "pending"
        assert created.headers["Aurous-Request-Id"].startswith("req_")
        done = finished_image(http)
        assert done["status"] == "succeeded"
        # Output URLs lead back through the proxy, not to the upstream it forwards to.
        assert done["output_urls"][0].startswith("http://proxy.test/v1/images/")
        output = http.get(done["output_urls"][0])
        assert output.status_code == 200
        assert output.headers["content-type"] == "image/png"


def test_drift_proxy_names_every_drift_in_one_documented_line():
    assert set(DRIFTS) == {
        "rename-field",
        "undocumented-enum",
        "drop-header",
        "wrong-status",
        "bad-signature-secret",
        "never-expire",
        "overcharge",
    }
    for name, drift in DRIFTS.items():
        assert f"``{name}``" in (drift_module.__doc__ or "")
        assert drift.summary
        assert "\n" not in drift.summary
    assert len(drift_module.describe().splitlines()) == len(DRIFTS)


def test_parse_drifts_accepts_commas_and_all_and_rejects_unknown_names():
    assert parse_drifts(["wrong-status,drop-header", "rename-field"]) == ["rename-field", "drop-header", "wrong-status"]
    assert parse_drifts(["all"]) == list(DRIFTS)
    with pytest.raises(ValueError, match="unknown drift teleport"):
        parse_drifts(["teleport"])


def test_drift_rename_field_and_undocumented_enum_rewrite_generation_bodies():
    with client("rename-field", "undocumented-enum") as http:
        created = http.post("/v1/images", json={"prompt": "a lighthouse"}, headers=KEY).json()
        assert "created_at" not in created
        assert created["created"]
        assert created["status"] == "queued"
        listed = http.get("/v1/images", headers=KEY).json()
        assert [(item["status"], "created_at" in item) for item in listed["data"]] == [("queued", False)]


def test_drift_drop_header_and_wrong_status():
    with client("drop-header", "wrong-status") as http:
        created = http.post("/v1/images", json={"prompt": "a lighthouse"}, headers=KEY)
        assert created.status_code == 200
        assert "aurous-request-id" not in created.headers
        assert created.headers["Aurous-Version"]


def test_drift_never_expire_serves_an_expired_output_with_its_bytes():
    with client("never-expire") as http:
        done = finished_image(http)
        fresh = http.get(done["output_urls"][0])
        http.post("/_mock/clock/advance", json={"seconds": 8 * 86400}, headers=KEY)
        again = http.get(f"/v1/images/{done['id']}", headers=KEY).json()
        stale = http.get(again["output_urls"][0])
        assert (stale.status_code, stale.headers["content-type"]) == (200, "image/png")
        assert stale.content == fresh.content
    with client() as http:  # the upstream itself: 410 output_expired
        done = finished_image(http)
        http.post("/_mock/clock/advance", json={"seconds": 8 * 86400}, headers=KEY)
        again = http.get(f"/v1/images/{done['id']}", headers=KEY).json()
        assert http.get(again["output_urls"][0]).status_code == 410


def test_drift_overcharge_estimates_half_of_what_the_create_charges():
    body = {"prompt": "a lighthouse", "enhance_prompt": True}
    with client("overcharge") as http:
        estimate = http.post("/v1/images/estimate", json=body, headers=KEY).json()["estimated_cost"]
        charged = http.post("/v1/images", json=body, headers=KEY).json()["cost"]
    assert estimate == {"amount": 1.0, "breakdown": {"base": 0.5, "enhance": 0.5}}
    assert charged["amount"] == 2


def test_drift_bad_signature_secret_answers_a_secret_deliveries_are_not_signed_with():
    for drifts, verifies in (((), True), (("bad-signature-secret",), False)):
        sender = RecordingSender()
        with client(*drifts, sender=sender) as http:
            endpoint = http.post("/v1/webhook_endpoints", json={"url": HOOK, "events": ["*"]}, headers=KEY).json()
            assert endpoint["secret"].startswith("whsec_")
            assert endpoint["secret_preview"][:9] == endpoint["secret"][:9]
            fired = http.post(
                f"/v1/webhook_endpoints/{endpoint['id']}/test", json={"event_type": "image.completed"}, headers=KEY
            )
            assert fired.status_code in (200, 202)
            http.post("/_mock/webhooks/flush", headers=KEY)
        (delivery,) = sender.requests
        signature = delivery.headers["Aurous-Webhook-Signature"]
        if verifies:
            verify_signature(delivery.body, signature, endpoint["secret"])
        else:
            with pytest.raises(SignatureMismatchError):
                verify_signature(delivery.body, signature, endpoint["secret"])


# -- what the kit reports for each drift --------------------------------------------------------------------------

CONFORMANCE = [
    # drift, operation, finding, what the finding's expected/actual must say
    ("rename-field", "createImage", "JsonSchemaError", ("with created_at", "it has created")),
    ("undocumented-enum", "createImage", "JsonSchemaError", ("$.status: enum", '"queued"')),
    ("drop-header", "getBalance", "MissingRequestId", ("Aurous-Request-Id", "none")),
    ("wrong-status", "createImage", "UndefinedStatusCode", ("HTTP 201", "HTTP 200")),
]


@pytest.mark.parametrize(("drift", "operation", "failure", "says"), CONFORMANCE, ids=[row[0] for row in CONFORMANCE])
def test_check_reports_conformance_drift(drift, operation, failure, says):
    target = Target("drifted", app=DriftProxy(emulator(), [drift]))
    result = check(target, suites=["conformance"], operations=[operation], max_examples=1)
    assert result.exit_code == 1
    found = [finding for finding in result.findings if finding.failure == failure]
    assert found, result.summary()
    expected, actual = says
    assert expected in (found[0].expected or ""), found[0]
    assert actual in (found[0].actual or ""), found[0]
    assert found[0].curl
    assert "$AUROUS_API_KEY" in found[0].curl
    assert f"--operation {operation}" in (found[0].replay or "")


def test_check_replay_command_selects_the_case_again():
    """The replay's options, parsed by the real CLI parser, run the same case and find the same drift."""
    target = Target("drifted", app=DriftProxy(emulator(), ["wrong-status"]))
    first = check(target, suites=["conformance"], operations=["createImage"], max_examples=1)
    (finding,) = first.findings
    args = _parser().parse_args(shlex.split(finding.replay or "")[1:])
    again = check(
        Target("drifted", app=DriftProxy(emulator(), ["wrong-status"])),
        profile=args.profile,
        suites=args.suite,
        operations=args.operation,
        max_examples=args.max_examples,
        seed=args.seed,
    )
    assert [(f.failure, f.operation, f.actual) for f in again.findings] == [
        (finding.failure, finding.operation, finding.actual)
    ]
    assert again.cases == first.cases


SCRIPTED = [
    # drift, suite, the finding its suite reports (suites landing on other branches)
    ("bad-signature-secret", "webhooks", "WebhookSignatureInvalid", "kit-hooks"),
    ("never-expire", "workflows", "OutputNeverExpires", "kit-workflows"),
    ("overcharge", "workflows", "ChargedMoreThanEstimated", "kit-workflows"),
]


@pytest.mark.parametrize(
    ("drift", "suite", "failure"),
    [
        pytest.param(
            drift,
            suite,
            failure,
            id=drift,
            marks=pytest.mark.xfail(
                suite not in SUITES, reason=f"the {suite} suite lands on {branch}", strict=True, raises=ValueError
            ),
        )
        for drift, suite, failure, branch in SCRIPTED
    ],
)
def test_check_reports_scripted_drift(drift, suite, failure):
    # Deliveries must really reach the webhooks suite's loopback receiver, so this emulator sends for real.
    upstream = emulator(HttpxSender()) if suite == "webhooks" else emulator()
    result = check(Target("drifted", app=DriftProxy(upstream, [drift])), suites=[suite], max_examples=1)
    assert result.exit_code == 1
    assert failure in {finding.failure for finding in result.findings}, result.summary()


# -- the console script -------------------------------------------------------------------------------------------


def test_cli_drift_proxy_lists_the_drifts_one_line_each(capsys):
    assert main(["drift-proxy", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(DRIFTS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drift-proxy", "--upstream", "http://127.0.0.1:1", "--drift", "teleport"], "unknown drift teleport"),
        (["drift-proxy", "--drift", "wrong-status"], "--upstream URL is required"),
    ],
)
def test_cli_drift_proxy_refuses_bad_options_with_status_2(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
