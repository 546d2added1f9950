"""Scenarios over HTTP: every outcome seeded by prompt marker, header and control plane; chains, nth, isolation,
precedence, the ``/_mock/scenarios`` routes, the scenario file and determinism.

Timings are pinned (images: 2 s pending, 10 s processing) and each test uses its own key (its own team).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from mockserver import InMemoryStore, create_app
from mockserver.api.scenarios import FILE_RULE, HEADER, ConnectionDropped
from mockserver.cli import main
from mockserver.clock import VirtualClock
from mockserver.core.scenarios import KNOWN, UNKNOWN, ScenarioFileError
from mockserver.webhooks import RecordingSender
from tests.conftest import BASE_URL, START, make_settings, new_api_key
from tests.helpers import assert_envelope

ROOT = Path(__file__).resolve().parents[3]
PINNED = {
    "rate_limits_enabled": False,
    "image_pending_seconds": 2,
    "image_processing_seconds": 10,
    "video_pending_seconds": 3,
    "video_processing_seconds": 30,
    "webhook_background": False,
}
IMAGE_DONE = 12
WAYS = ["marker", "header", "control"]
HOOK = "https://example.com/hook"

Build = Callable[..., TestClient]


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def build(sender: RecordingSender) -> Iterator[Build]:
    """``build(**settings)``: an in-process app on its own virtual clock and store, closed at teardown."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            app = create_app(
                make_settings(**{**PINNED, **overrides}),
                clock=VirtualClock(START),
                store=InMemoryStore(),
                sender=sender,
            )
            return stack.enter_context(TestClient(app, base_url=BASE_URL))

        yield make


@pytest.fixture
def client(build: Build) -> TestClient:
    return build()


@pytest.fixture
def headers() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def add_rule(client: TestClient, headers: dict[str, str], **rule: Any) -> dict[str, Any]:
    return dict(ok(client.post("/_mock/scenarios", headers=headers, json=rule), 201))


def create(
    client: TestClient, headers: dict[str, str], way: str | None = None, outcome: str = "", kind: str = "image"
) -> Any:
    """POST /v1/images (or /v1/videos) with ``outcome`` (``name`` or ``name=arg``) seeded ``way``."""
    body: dict[str, Any] = {"prompt": "a lighthouse"} if kind == "image" else {"video_lora_id": "seedance-1-pro"}
    sent = dict(headers)
    if way == "marker":
        body["prompt"] = f"a lighthouse [mock:{outcome}] at dusk"
    elif way == "header":
        sent[HEADER] = outcome
    elif way == "control":
        add_rule(
            client, headers, when={"operation": "createImage" if kind == "image" else "createVideo"}, then=[outcome]
        )
    return client.post(f"/v1/{kind}s", headers=sent, json=body)


def get(client: TestClient, headers: dict[str, str], gen_id: str) -> dict[str, Any]:
    return dict(ok(client.get(f"/v1/images/{gen_id}", headers=headers)))


def advance(client: TestClient, headers: dict[str, str], seconds: float) -> None:
    ok(client.post("/_mock/clock/advance", headers=headers, json={"seconds": seconds}))


def balance(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    return dict(ok(client.get("/v1/balance", headers=headers)))


def flush(client: TestClient, headers: dict[str, str]) -> None:
    ok(client.post("/_mock/webhooks/flush", headers=headers))


def hook(client: TestClient, headers: dict[str, str], url: str = HOOK) -> None:
    ok(client.post("/v1/webhook_endpoints", headers=headers, json={"url": url, "events": ["*"]}), 201)


def events(sender: RecordingSender, url: str = HOOK) -> list[dict[str, Any]]:
    return [orjson.loads(request.body) for request in sender.requests if request.url == url]


# --- generation-level outcomes ---------------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_fail_fails_at_finish_with_its_message_releases_the_hold_and_sends_failed(client, headers, sender, way):
    hook(client, headers)
    gen = ok(create(client, headers, way, "fail=Content policy violation"), 201)
    assert (gen["status"], gen["error_message"]) == ("pending", None)
    assert balance(client, headers)["held_credits"] == 1
    advance(client, headers, IMAGE_DONE - 1)
    running = get(client, headers, gen["id"])
    assert (running["status"], running["error_message"]) == ("processing", None)
    advance(client, headers, 1)
    done = get(client, headers, gen["id"])
    assert (done["status"], done["error_message"], done["output_urls"]) == ("failed", "Content policy violation", None)
    assert done["cost"]["amount"] == 0
    money = balance(client, headers)
    assert (money["credits"], money["held_credits"], money["available_credits"]) == (1000, 0, 1000)
    flush(client, headers)
    [event] = events(sender)
    assert event["event"] == "image.failed"
    assert event["data"]["error_message"] == "Content policy violation"


@pytest.mark.parametrize("way", WAYS)
def test_fail_applies_to_videos_too(client, headers, way):
    gen = ok(create(client, headers, way, "fail=Seedance said no", kind="video"), 201)
    advance(client, headers, 33)
    done = get(client, headers, gen["id"])
    assert (done["status"], done["error_message"]) == ("failed", "Seedance said no")


@pytest.mark.parametrize("way", WAYS)
def test_stall_never_leaves_processing_until_cancelled(client, headers, way):
    gen = ok(create(client, headers, way, "stall"), 201)
    advance(client, headers, 10 * 365 * 86400)
    assert get(client, headers, gen["id"])["status"] == "processing"
    assert balance(client, headers)["held_credits"] == 1
    cancelled = ok(client.post(f"/v1/images/{gen['id']}/cancel", headers=headers))
    assert cancelled["status"] == "cancelled"
    assert balance(client, headers)["held_credits"] == 0


@pytest.mark.parametrize("way", WAYS)
def test_stall_pending_never_leaves_pending_until_cancelled(client, headers, way):
    gen = ok(create(client, headers, way, "stall_pending"), 201)
    advance(client, headers, 86400)
    assert get(client, headers, gen["id"])["status"] == "pending"
    assert ok(client.post(f"/v1/images/{gen['id']}/cancel", headers=headers))["status"] == "cancelled"


@pytest.mark.parametrize("way", WAYS)
def test_duration_makes_processing_take_exactly_that_long(client, headers, way):
    gen = ok(create(client, headers, way, "duration=45"), 201)
    advance(client, headers, 2 + 44)
    assert get(client, headers, gen["id"])["status"] == "processing"
    advance(client, headers, 1)
    done = get(client, headers, gen["id"])
    assert (done["status"], done["duration_ms"]) == ("succeeded", 45000)


@pytest.mark.parametrize("way", WAYS)
def test_expire_early_makes_the_output_answer_410_that_long_after_completion(client, headers, way):
    gen = ok(create(client, headers, way, "expire_early=60"), 201)
    advance(client, headers, IMAGE_DONE)
    url = get(client, headers, gen["id"])["output_urls"][0]
    assert client.get(url).status_code == 200
    advance(client, headers, 59)
    assert client.get(url).status_code == 200
    advance(client, headers, 1)
    assert_envelope(client.get(url), 410, "output_expired")


@pytest.mark.parametrize("way", WAYS)
def test_succeed_is_the_normal_lifecycle(client, headers, way):
    gen = ok(create(client, headers, way, "succeed"), 201)
    advance(client, headers, IMAGE_DONE)
    assert get(client, headers, gen["id"])["status"] == "succeeded"
    assert balance(client, headers)["credits"] == 999


# --- request-level outcomes ------------------------------------------------------------------------------

REQUEST_LEVEL = [
    ("block", 400, "prompt_blocked", "prompt", {}),
    ("block_reference", 400, "reference_blocked", None, {}),
    ("provider_unavailable", 502, "provider_unavailable", None, {}),
    ("provider_timeout", 504, "provider_timeout", None, {}),
    ("internal_error", 500, "internal_error", None, {}),
    ("rate_limit=7", 429, "too_many_requests", None, {"Retry-After": "7"}),
    ("concurrency_limit", 429, "concurrency_limit_exceeded", None, {"Retry-After": "1"}),
    ("balance_too_low", 402, "balance_too_low", None, {}),
]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("outcome", "status", "code", "param", "extra"), REQUEST_LEVEL)
def test_request_level_outcome_answers_instead_and_creates_nothing(
    client, headers, way, outcome, status, code, param, extra
):
    response = create(client, headers, way, outcome)
    error = assert_envelope(response, status, code, param)
    for name, value in extra.items():
        assert response.headers[name] == value
    if code == "balance_too_low":
        assert error["message"] == "Team available balance is 1000.0 credits, generation requires 1.0."
    assert ok(client.get("/v1/images", headers=headers))["data"] == []
    assert balance(client, headers)["held_credits"] == 0


def test_balance_too_low_still_reports_validation_errors_first(client, headers):
    response = client.post("/v1/images", headers={**headers, HEADER: "balance_too_low"}, json={"prompt": ""})
    assert_envelope(response, 400, "value_out_of_range", "prompt")


@pytest.mark.parametrize("way", WAYS)
def test_latency_delays_the_answer(client, headers, way):
    started = time.perf_counter()
    ok(create(client, headers, way, "latency=80"), 201)
    assert time.perf_counter() - started >= 0.08


@pytest.mark.parametrize("way", WAYS)
def test_drop_in_process_raises_and_creates_nothing(client, headers, way):
    """In process there is no connection to close: the exception reaches the caller (see the e2e test for uvicorn)."""
    with pytest.raises(ConnectionDropped):
        create(client, headers, way, "drop")
    assert ok(client.get("/v1/images", headers=headers))["data"] == []


def test_request_level_outcomes_reach_any_operation(client, headers):
    add_rule(client, headers, when={"operation": "getBalance"}, then=["rate_limit=3"])
    assert_envelope(client.get("/v1/balance", headers=headers), 429, "too_many_requests")
    assert client.get("/v1/balance", headers=headers).status_code == 200
    missing = client.get("/v1/images/img_01KT07PEH0K9093H1N90AEJCZ4", headers={**headers, HEADER: "internal_error"})
    assert_envelope(missing, 500, "internal_error")


# --- webhook-level outcomes ------------------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_webhook_delay_schedules_the_deliveries_later_on_the_team_clock(client, headers, sender, way):
    hook(client, headers)
    ok(create(client, headers, way, "webhook_delay=120"), 201)
    advance(client, headers, IMAGE_DONE)
    flush(client, headers)
    assert events(sender) == []
    advance(client, headers, 119)
    flush(client, headers)
    assert events(sender) == []
    advance(client, headers, 1)
    flush(client, headers)
    assert [event["event"] for event in events(sender)] == ["image.completed"]


@pytest.mark.parametrize("way", WAYS)
def test_webhook_duplicate_sends_each_delivery_twice(client, headers, sender, way):
    hook(client, headers)
    ok(create(client, headers, way, "webhook_duplicate"), 201)
    advance(client, headers, IMAGE_DONE)
    flush(client, headers)
    first, second = events(sender)
    assert first == second
    ids = [r.headers["Aurous-Event-Id"] for r in sender.requests if r.url == HOOK]
    assert ids == [first["id"]] * 2


@pytest.mark.parametrize("way", WAYS)
def test_webhook_out_of_order_lets_later_events_overtake(client, headers, sender, way):
    hook(client, headers)
    early = ok(create(client, headers, way, "webhook_out_of_order"), 201)
    advance(client, headers, 1)
    late = ok(client.post("/v1/images", headers=headers, json={"prompt": "a later lighthouse"}), 201)
    advance(client, headers, IMAGE_DONE)  # both finished: their events fall due together
    flush(client, headers)
    assert [event["data"]["id"] for event in events(sender)] == [late["id"], early["id"]]


def test_webhook_outcomes_shape_the_generation_callback_too(client, headers, sender):
    body = {"prompt": "a lighthouse [mock:webhook_duplicate]", "webhook_url": "https://example.com/cb"}
    ok(client.post("/v1/images", headers=headers, json=body), 201)
    advance(client, headers, IMAGE_DONE)
    flush(client, headers)
    assert len(events(sender, "https://example.com/cb")) == 2


# --- markers and the header ------------------------------------------------------------------------------


def test_marker_stays_in_the_stored_prompt(client, headers):
    gen = ok(create(client, headers, "marker", "duration=5"), 201)
    assert gen["prompt"] == "a lighthouse [mock:duration=5] at dusk"


def test_unknown_marker_is_refused_with_the_known_outcomes(client, headers):
    response = client.post("/v1/images", headers=headers, json={"prompt": "a cat [mock:fial]"})
    assert_envelope(response, 400, "invalid_format", "prompt", message=UNKNOWN.format(name="fial", known=KNOWN))
    assert ok(client.get("/v1/images", headers=headers))["data"] == []


def test_markers_are_read_from_creates_only(client, headers):
    response = client.post("/v1/images/estimate", headers=headers, json={"prompt": "a cat [mock:block]"})
    assert ok(response)["object"] == "estimate"


@pytest.mark.parametrize(
    ("value", "code"),
    [("fial", "invalid_format"), ("latency=99999", "value_out_of_range"), ("succeed, nope", "invalid_format")],
)
def test_bad_header_is_refused_naming_the_header(client, headers, value, code):
    response = client.post("/v1/images", headers={**headers, HEADER: value}, json={"prompt": "a cat"})
    assert_envelope(response, 400, code, HEADER)


def test_header_outcome_must_make_sense_for_the_operation(client, headers):
    response = client.get("/v1/balance", headers={**headers, HEADER: "fail"})
    error = assert_envelope(response, 400, "invalid_format", HEADER)
    assert error["message"] == (
        "Scenario outcome 'fail' applies to createCharacter, createImage, createVideo, regenerateCharacterRef, "
        "resynthesizeCharacter only, not getBalance."
    )


def test_header_chain_applies_its_first_element_to_that_request_only(client, headers):
    chained = {**headers, HEADER: "block, succeed"}
    for _ in range(2):
        assert_envelope(
            client.post("/v1/images", headers=chained, json={"prompt": "a"}), 400, "prompt_blocked", "prompt"
        )
    ok(client.post("/v1/images", headers=headers, json={"prompt": "a"}), 201)


def test_marker_beats_header_beats_team_rules(client, headers):
    rule = add_rule(client, headers, then=["block"], repeat=True)
    both = {**headers, HEADER: "provider_timeout"}
    assert_envelope(
        client.post("/v1/images", headers=both, json={"prompt": "[mock:internal_error]"}), 500, "internal_error"
    )
    assert_envelope(client.post("/v1/images", headers=both, json={"prompt": "a"}), 504, "provider_timeout")
    assert_envelope(client.post("/v1/images", headers=headers, json={"prompt": "a"}), 400, "prompt_blocked", "prompt")
    [listed] = ok(client.get("/_mock/scenarios", headers=headers))["data"]
    assert (listed["id"], listed["seen"], listed["hits"]) == (rule["id"], 3, 1)


def test_control_routes_are_never_scripted(client, headers):
    add_rule(client, headers, then=["internal_error"], repeat=True)
    assert client.get("/_mock/clock", headers={**headers, HEADER: "drop"}).status_code == 200
    assert client.get("/_mock/scenarios", headers=headers).status_code == 200


# --- rules: chains, nth, repeat, isolation ---------------------------------------------------------------


def test_chain_fail_fail_succeed_over_three_creates(client, headers):
    rule = add_rule(client, headers, when={"operation": "createImage"}, then=["fail", "fail", "succeed"])
    assert [step["outcome"] for step in rule["remaining"]] == ["fail", "fail", "succeed"]
    ids = [ok(client.post("/v1/images", headers=headers, json={"prompt": "a"}), 201)["id"] for _ in range(4)]
    advance(client, headers, IMAGE_DONE)
    assert [get(client, headers, gen_id)["status"] for gen_id in ids] == ["failed", "failed", "succeeded", "succeeded"]
    [listed] = ok(client.get("/_mock/scenarios", headers=headers))["data"]
    assert (listed["hits"], listed["seen"], listed["spent"], listed["remaining"]) == (3, 4, True, [])


def test_nth_matching_request_gets_the_outcome(client, headers):
    add_rule(client, headers, when={"operation": "createImage", "prompt_contains": "fox", "nth": 2}, then="block")
    statuses = [
        client.post("/v1/images", headers=headers, json={"prompt": prompt}).status_code
        for prompt in ("a fox", "a cat", "a fox", "a fox")
    ]
    assert statuses == [201, 201, 400, 201]


def test_repeat_uses_the_chain_again_and_again(client, headers):
    add_rule(client, headers, when={"operation": "createImage"}, then=["internal_error", "succeed"], repeat=True)
    statuses = [client.post("/v1/images", headers=headers, json={"prompt": "a"}).status_code for _ in range(4)]
    assert statuses == [500, 201, 500, 201]


def test_when_header_and_media_type_select_requests(client, headers):
    add_rule(client, headers, when={"media_type": "video", "header": "X-Test-Case: flaky"}, then="provider_timeout")
    video = {"video_lora_id": "seedance-1-pro"}
    assert (
        client.post("/v1/images", headers={**headers, "X-Test-Case": "flaky"}, json={"prompt": "a"}).status_code == 201
    )
    assert client.post("/v1/videos", headers=headers, json=video).status_code == 201
    assert_envelope(
        client.post("/v1/videos", headers={**headers, "X-Test-Case": "flaky"}, json=video), 504, "provider_timeout"
    )


def test_rules_of_one_team_never_affect_another(client, headers):
    other = {"X-Api-Key": new_api_key()}
    add_rule(client, headers, then=["internal_error"], repeat=True)
    for _ in range(3):
        ok(client.post("/v1/images", headers=other, json={"prompt": "a"}), 201)
    assert_envelope(client.post("/v1/images", headers=headers, json={"prompt": "a"}), 500, "internal_error")
    assert ok(client.get("/_mock/scenarios", headers=other))["data"] == []


def test_idempotent_replay_uses_no_step(client, headers):
    add_rule(client, headers, when={"operation": "createImage"}, then=["succeed", "block"])
    keyed = {**headers, "Idempotency-Key": "once"}
    first = client.post("/v1/images", headers=keyed, json={"prompt": "a"})
    assert_envelope(client.post("/v1/images", headers=keyed, json={"prompt": "a"}), 409, "idempotency_key_in_use")
    ok(client.post("/_mock/clock/advance", headers=headers, json={"seconds": 3600}))
    replay = client.post("/v1/images", headers=keyed, json={"prompt": "a"})
    assert (first.status_code, replay.status_code, replay.headers["Aurous-Idempotent-Replayed"]) == (201, 201, "true")
    assert_envelope(client.post("/v1/images", headers=headers, json={"prompt": "a"}), 400, "prompt_blocked", "prompt")


# --- the control plane -----------------------------------------------------------------------------------


def test_add_rule_answers_201_with_the_rule(client, headers):
    rule = add_rule(
        client,
        headers,
        when={"operation": "createVideo", "media_type": "video", "prompt_contains": "boat", "nth": 2},
        then=["fail", {"outcome": "duration", "arg": 30}, "succeed"],
    )
    assert rule["id"].startswith("scn_")
    assert rule == rule | {
        "object": "scenario",
        "source": "team",
        "when": {
            "operation": "createVideo",
            "media_type": "video",
            "prompt_contains": "boat",
            "header": None,
            "nth": 2,
        },
        "then": [
            {"outcome": "fail", "arg": "Content policy violation"},
            {"outcome": "duration", "arg": 30},
            {"outcome": "succeed", "arg": None},
        ],
        "repeat": False,
        "seen": 0,
        "hits": 0,
        "spent": False,
        "created_at": "2026-06-01T12:00:00Z",
    }
    assert rule["remaining"] == rule["then"]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"then": ["nope"]}, 400, "invalid_format", "then[0]"),
        ({}, 400, "missing_field", "then"),
        ({"when": {"operation": "getBalance"}, "then": "fail"}, 400, "invalid_format", "then"),
        ({"when": {"nth": 0}, "then": "fail"}, 400, "value_out_of_range", "when.nth"),
        ({"when": {"operation": "makeCoffee"}, "then": "fail"}, 400, "invalid_format", "when.operation"),
        ({"then": "fail", "keys": ["al_live_a"]}, 400, "invalid_format", "keys"),
    ],
)
def test_add_rule_validation_errors_name_the_field(client, headers, body, status, code, param):
    assert_envelope(client.post("/_mock/scenarios", headers=headers, json=body), status, code, param)


def test_add_rule_refuses_a_non_object_body(client, headers):
    assert_envelope(client.post("/_mock/scenarios", headers=headers, content=b"[1]"), 400, "invalid_format")


def test_delete_one_rule_then_all(client, headers):
    first = add_rule(client, headers, then="block")
    add_rule(client, headers, then="fail")
    deleted = ok(client.delete(f"/_mock/scenarios/{first['id']}", headers=headers))
    assert deleted == {"id": first["id"], "object": "scenario", "deleted": True}
    assert_envelope(client.delete(f"/_mock/scenarios/{first['id']}", headers=headers), 404, "resource_not_found")
    assert ok(client.delete("/_mock/scenarios", headers=headers)) == {"object": "list", "deleted": 1}
    assert ok(client.get("/_mock/scenarios", headers=headers))["data"] == []
    ok(client.post("/v1/images", headers=headers, json={"prompt": "a"}), 201)


def test_reset_forgets_the_team_rules(client, headers):
    add_rule(client, headers, then="block", repeat=True)
    ok(client.post("/_mock/reset", headers=headers))
    assert ok(client.get("/_mock/scenarios", headers=headers))["data"] == []


# --- the scenario file -----------------------------------------------------------------------------------


def scenario_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenarios.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_rules_apply_to_every_team_or_to_the_teams_of_their_keys(build, tmp_path):
    path = scenario_file(
        tmp_path,
        """
rules:
  - when: {operation: getBalance}
    then: [rate_limit=5]
    keys: [al_live_ci_only]
  - when: {operation: createImage, prompt_contains: "[flaky]"}
    then: [provider_unavailable, succeed]
""",
    )
    client = build(scenarios_file=path)
    ci, anyone = {"X-Api-Key": "al_live_ci_only"}, {"X-Api-Key": new_api_key()}
    assert_envelope(client.get("/v1/balance", headers=ci), 429, "too_many_requests")
    assert client.get("/v1/balance", headers=anyone).status_code == 200
    for team in (ci, anyone):
        flaky = {"prompt": "a [flaky] lighthouse"}
        assert_envelope(client.post("/v1/images", headers=team, json=flaky), 502, "provider_unavailable")
        ok(client.post("/v1/images", headers=team, json=flaky), 201)
    listed = ok(client.get("/_mock/scenarios", headers=anyone))["data"]
    assert [(rule["source"], rule["hits"]) for rule in listed] == [("file", 2)]
    error = assert_envelope(
        client.delete(f"/_mock/scenarios/{listed[0]['id']}", headers=anyone), 400, "invalid_format", "id"
    )
    assert error["message"] == FILE_RULE.format(id=listed[0]["id"])


def test_team_rules_come_before_file_rules(build, tmp_path):
    client = build(scenarios_file=scenario_file(tmp_path, "rules: [{then: [block], repeat: true}]"))
    headers = {"X-Api-Key": new_api_key()}
    add_rule(client, headers, then=["internal_error"])
    assert_envelope(client.post("/v1/images", headers=headers, json={"prompt": "a"}), 500, "internal_error")
    assert_envelope(client.post("/v1/images", headers=headers, json={"prompt": "a"}), 400, "prompt_blocked", "prompt")


def test_invalid_file_stops_create_app_with_file_rule_and_field(tmp_path):
    path = scenario_file(tmp_path, "rules:\n  - then: [fail]\n  - when: {nth: 0}\n    then: fail\n")
    with pytest.raises(ScenarioFileError, match=r"scenarios\.yaml: rules\[1\]\.when\.nth: when\.nth must be between"):
        create_app(make_settings(scenarios_file=path))
    with pytest.raises(ScenarioFileError, match="cannot be read"):
        create_app(make_settings(scenarios_file=tmp_path / "missing.yaml"))


def test_cli_exits_non_zero_on_an_invalid_file(tmp_path, capsys):
    path = scenario_file(tmp_path, "rules: [{then: [fial]}]")
    assert main(["serve", "--port", "0", "--scenarios", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"aurous-mock: invalid scenario file: {path}: rules[0].then[0]: Unknown scenario outcome 'fial'"
    )


def test_example_scenario_file_is_valid(build):
    client = build(scenarios_file=ROOT / "examples" / "scenarios.yaml")
    rules = ok(client.get("/_mock/scenarios", headers={"X-Api-Key": new_api_key()}))["data"]
    assert rules
    assert all(rule["source"] == "file" for rule in rules)


# --- determinism -----------------------------------------------------------------------------------------


def transcript(client: TestClient) -> list[Any]:
    """A fixed sequence of requests with scenarios of every kind; every status, id, header and body it gets."""
    headers = {"X-Api-Key": "al_live_determinism"}
    seen: list[Any] = []

    def record(response: Any) -> None:
        seen.append((response.status_code, response.headers.get("Aurous-Request-Id"), response.content))

    record(client.post("/_mock/scenarios", headers=headers, json={"then": ["fail", "duration=30", "succeed"]}))
    for prompt in ("one", "two", "three [mock:stall]", "four"):
        record(client.post("/v1/images", headers=headers, json={"prompt": prompt}))
    record(
        client.post("/v1/videos", headers={**headers, HEADER: "duration=90"}, json={"video_lora_id": "seedance-1-pro"})
    )
    record(client.post("/v1/images", headers=headers, json={"prompt": "[mock:block]"}))
    for seconds in (5, 40, 100):
        advance(client, headers, seconds)
        record(client.get("/v1/images", headers=headers))
    record(client.get("/_mock/scenarios", headers=headers))
    record(client.get("/v1/balance", headers=headers))
    return seen


def test_same_seed_and_requests_give_identical_ids_outcomes_and_timings(build):
    realistic = {name: None for name in PINNED if name.endswith("_seconds")}  # drawn timings, not pinned ones
    first, second = transcript(build(seed=99, **realistic)), transcript(build(seed=99, **realistic))
    assert first == second
    statuses = [row["status"] for row in orjson.loads(first[-3][2])["data"]]
    assert sorted(statuses) == ["failed", "processing", "succeeded", "succeeded", "succeeded"]
    assert transcript(build(seed=100, **realistic)) != first
