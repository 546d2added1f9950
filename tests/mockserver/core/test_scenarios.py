"""The scenario core: the outcome registry, markers, header chains, rule validation, matching, chains, the file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mockserver.core.errors import DomainError, InvalidFormatError, ValueOutOfRangeError
from mockserver.core.models import JobStatus, Team
from mockserver.core.scenarios import (
    CHATS,
    COMPLETION,
    CREATES,
    GENERATION,
    KNOWN,
    NEVER,
    OUTCOMES,
    REQUEST,
    SYNTHESES,
    UNKNOWN,
    WEBHOOK,
    Call,
    ScenarioFileError,
    Scenarios,
    Step,
    delivery_plan,
    header_steps,
    markers,
    output_ttl,
    parse_file,
    parse_rule,
    recorded,
    terminal,
    timeline,
)
from mockserver.ids import IdSource
from mockserver.store import InMemoryStore
from tests.conftest import START

OPERATIONS = {"createImage", "createVideo", "getBalance", "getGeneration", "estimateImage"}
HEADER = "Aurous-Mock-Scenario"


def team(name: str = "team_A") -> Team:
    return Team(id=name, name=name, created_at=START, credits=1000)


def call(operation: str = "createImage", prompt: str | None = "a lighthouse", **headers: str) -> Call:
    return Call(operation, prompt, {k.lower(): v for k, v in headers.items()}, "al_live_a")


def service(file_rules: tuple[Any, ...] = (), team_of: dict[str, str] | None = None) -> Scenarios:
    scenarios = Scenarios(InMemoryStore(), IdSource(7), lambda key: (team_of or {}).get(key, "team_other"))
    scenarios.configure(OPERATIONS, file_rules)
    return scenarios


def rule(**body: Any) -> Any:
    return parse_rule(body, OPERATIONS)


# --- the registry ---------------------------------------------------------------------------------------


def test_registry_names_every_outcome_of_the_issue_once():
    assert set(OUTCOMES) == {
        "fail", "stall", "stall_pending", "duration", "expire_early", "succeed",
        "block", "block_reference", "provider_unavailable", "provider_timeout", "internal_error", "rate_limit",
        "concurrency_limit", "balance_too_low", "latency", "drop",
        "webhook_delay", "webhook_duplicate", "webhook_out_of_order",
        # LLM clients (issue 16)
        "tpm_rate_limit", "provider_rate_limited", "reply", "tool_call", "stream_error", "stream_drop",
        "slow_first_token",
    }  # fmt: skip
    levels = {name: outcome.level for name, outcome in OUTCOMES.items()}
    assert {name for name, level in levels.items() if level == COMPLETION} == {
        "reply", "tool_call", "stream_error", "stream_drop", "slow_first_token",
    }  # fmt: skip
    assert {name for name, level in levels.items() if level == WEBHOOK} == {
        "webhook_delay", "webhook_duplicate", "webhook_out_of_order",
    }  # fmt: skip
    synthesis = {"fail", "stall", "duration", "succeed"}  # character synthesis can be scripted too
    for outcome in OUTCOMES.values():
        if outcome.level == COMPLETION:
            assert outcome.operations == CHATS, outcome.name
        elif outcome.level != REQUEST:
            expected = CREATES | SYNTHESES if outcome.name in synthesis else CREATES
            assert outcome.operations == expected, outcome.name
    assert {o.name for o in OUTCOMES.values() if o.operations is None} == {
        "internal_error", "rate_limit", "latency", "drop",
    }  # fmt: skip


# --- markers and the header -------------------------------------------------------------------------------


def test_markers_read_name_and_argument_anywhere_in_the_prompt():
    prompt = "A fox [mock:fail=Content policy violation] in snow [mock:duration=45] [mock:stall]"
    assert markers(prompt) == [
        Step("fail", "Content policy violation"),
        Step("duration", 45),
        Step("stall", None),
    ]
    assert markers("no marker here [mock ] [other:fail]") == []
    assert markers(None) == []


def test_markers_use_defaults_when_the_argument_is_omitted():
    assert markers("[mock:fail]") == [Step("fail", "Content policy violation")]
    assert markers("[mock:fail=]") == [Step("fail", "Content policy violation")]
    assert markers("[mock:rate_limit]") == [Step("rate_limit", 1)]
    assert markers("[mock:expire_early]") == [Step("expire_early", 0)]
    assert markers("[mock:duration=2.5]") == [Step("duration", 2.5)]


def test_marker_with_unknown_outcome_lists_the_known_ones():
    with pytest.raises(InvalidFormatError) as raised:
        markers("a cat [mock:fial]")
    assert raised.value.param == "prompt"
    assert raised.value.detail == UNKNOWN.format(name="fial", known=KNOWN)
    assert "fail, stall, stall_pending" in raised.value.detail


@pytest.mark.parametrize(
    ("marker", "error"),
    [
        ("[mock:duration]", InvalidFormatError),  # needs an argument
        ("[mock:duration=soon]", InvalidFormatError),
        ("[mock:duration=-1]", ValueOutOfRangeError),
        ("[mock:duration=nan]", InvalidFormatError),
        ("[mock:latency=30001]", ValueOutOfRangeError),
        ("[mock:latency=1.5]", InvalidFormatError),  # whole milliseconds
        ("[mock:rate_limit=0]", ValueOutOfRangeError),
        ("[mock:block=why]", InvalidFormatError),  # takes no argument
        ("[mock:webhook_delay]", InvalidFormatError),
    ],
)
def test_marker_arguments_are_validated(marker, error):
    with pytest.raises(error) as raised:
        markers(f"a lighthouse {marker}")
    assert raised.value.param == "prompt"


def test_header_is_one_outcome_or_a_chain_and_every_element_is_checked():
    assert header_steps("fail", HEADER) == [Step("fail", "Content policy violation")]
    assert header_steps(" duration=45 , succeed ", HEADER) == [Step("duration", 45), Step("succeed")]
    assert header_steps("", HEADER) == []
    with pytest.raises(InvalidFormatError) as raised:
        header_steps("succeed, nope", HEADER)
    assert raised.value.param == HEADER


# --- rules -----------------------------------------------------------------------------------------------


def test_rule_accepts_names_arguments_and_objects():
    parsed = rule(
        when={
            "operation": "createVideo",
            "media_type": "video",
            "prompt_contains": "x",
            "header": "X-Case: a",
            "nth": 2,
        },
        then=["fail", {"outcome": "duration", "arg": 30}, "succeed"],
    )
    assert parsed.then == (Step("fail", "Content policy violation"), Step("duration", 30), Step("succeed"))
    assert parsed.when.nth == 2
    assert not parsed.repeat
    assert rule(then="block").then == (Step("block"),)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "then", "missing_field"),
        ({"then": []}, "then", "value_out_of_range"),
        ({"then": ["nope"]}, "then[0]", "invalid_format"),
        ({"then": [{"outcome": "duration", "arg": "x"}]}, "then[0].arg", "invalid_format"),
        ({"then": [{"outcome": "fail", "why": 1}]}, "then[0]", "invalid_format"),
        ({"then": [{"arg": 1}]}, "then[0].outcome", "missing_field"),
        ({"then": [3]}, "then[0]", "invalid_format"),
        ({"then": "fail", "repeat": "yes"}, "repeat", "invalid_format"),
        ({"then": "fail", "when": []}, "when", "invalid_format"),
        ({"then": "fail", "when": None}, "when", "invalid_format"),
        ({"then": "fail", "when": {"operation": "makeCoffee"}}, "when.operation", "invalid_format"),
        ({"then": "fail", "when": {"operation": "getBalance"}}, "then", "invalid_format"),
        ({"then": ["succeed", "fail"], "when": {"operation": "getGeneration"}}, "then[0]", "invalid_format"),
        ({"then": "fail", "when": {"media_type": "audio"}}, "when.media_type", "invalid_format"),
        ({"then": "fail", "when": {"operation": "createImage", "media_type": "video"}}, "when.media_type", None),
        ({"then": "fail", "when": {"nth": 0}}, "when.nth", "value_out_of_range"),
        ({"then": "fail", "when": {"nth": True}}, "when.nth", "invalid_format"),
        ({"then": "fail", "when": {"header": "Bad Header"}}, "when.header", "invalid_format"),
        ({"then": "fail", "when": {"prompt_contains": ""}}, "when.prompt_contains", "invalid_format"),
        ({"then": "fail", "when": {"nth": None}}, "when.nth", "invalid_format"),
        ({"then": "fail", "when": {"opration": "createImage"}}, "when.opration", "invalid_format"),
        ({"then": "fail", "keys": ["al_live_x"]}, "keys", "invalid_format"),  # only in the file
        ({"then": "fail", "thne": "fail"}, "thne", "invalid_format"),
    ],
)
def test_rule_validation_names_the_field(body, param, code):
    with pytest.raises(DomainError) as raised:
        parse_rule(body, OPERATIONS)
    assert raised.value.param == param
    assert raised.value.code == (code or "invalid_format")


def test_rule_applies_only_to_operations_its_outcomes_make_sense_for():
    assert rule(then="fail").operations == CREATES | SYNTHESES
    assert rule(then="webhook_delay=5").operations == CREATES
    assert rule(then="internal_error").operations is None
    assert rule(then=["internal_error", "fail"]).operations == CREATES | SYNTHESES
    assert rule(then="internal_error", when={"operation": "getBalance"}).when.operation == "getBalance"
    assert not rule(then="fail").matches(call("getBalance"))
    assert rule(then="internal_error").matches(call("getBalance"))


def test_when_matches_operation_media_prompt_and_header():
    when = rule(then="fail", when={"media_type": "video", "prompt_contains": "boat", "header": "X-Case: slow"}).when
    assert when.matches(call("createVideo", "a paper boat", **{"X-Case": " slow "}))
    assert not when.matches(call("createImage", "a paper boat", **{"X-Case": "slow"}))
    assert not when.matches(call("createVideo", "a car", **{"X-Case": "slow"}))
    assert not when.matches(call("createVideo", None, **{"X-Case": "slow"}))
    assert not when.matches(call("createVideo", "a paper boat", **{"X-Case": "fast"}))
    present = rule(then="fail", when={"header": "X-Case"}).when
    assert present.matches(call(**{"X-Case": "anything"}))
    assert not present.matches(call())


def test_chain_is_used_in_order_then_spent():
    chained = rule(then=["fail", "fail", "succeed"])
    assert [chained.take() for _ in range(4)] == [Step("fail", "Content policy violation")] * 2 + [
        Step("succeed"),
        None,
    ]
    assert chained.spent
    assert chained.remaining == ()
    assert (chained.seen, chained.hits) == (4, 3)


def test_repeat_cycles_the_chain_and_nth_skips_the_first_matches():
    cycled = rule(then=["block", "succeed"], repeat=True)
    assert [s.outcome for s in (cycled.take(), cycled.take(), cycled.take())] == ["block", "succeed", "block"]
    assert [s.outcome for s in cycled.remaining] == ["succeed"]
    second = rule(then="block", when={"nth": 2})
    assert [second.take(), second.take(), second.take()] == [None, Step("block"), None]


# --- what a step does to a generation ----------------------------------------------------------------------


def test_generation_level_steps_shape_the_timeline_and_the_terminal_status():
    started, finished = START + timedelta(seconds=2), START + timedelta(seconds=12)
    assert timeline(None, started, finished) == (started, finished)
    assert timeline(Step("stall"), started, finished) == (started, NEVER)
    assert timeline(Step("stall_pending"), started, finished) == (NEVER, NEVER)
    assert timeline(Step("duration", 45), started, finished) == (started, started + timedelta(seconds=45))
    assert timeline(Step("succeed"), started, finished) == (started, finished)
    assert terminal(Step("fail", "Nope")) == (JobStatus.FAILED, "Nope")
    assert terminal(Step("block")) == (JobStatus.SUCCEEDED, None)
    assert recorded(Step("block")) == {}
    params = recorded(Step("expire_early", 60))
    assert output_ttl(params, 86400) == 60
    assert output_ttl({}, 86400) == 86400


def test_webhook_level_steps_become_a_delivery_plan():
    assert delivery_plan(recorded(Step("webhook_delay", 30))).delay == 30
    assert delivery_plan(recorded(Step("webhook_duplicate"))).copies == 2
    assert delivery_plan(recorded(Step("webhook_out_of_order"))).last
    plain = delivery_plan({})
    assert (plain.delay, plain.copies, plain.last) == (0, 1, False)
    assert all(OUTCOMES[name].level == GENERATION for name in ("fail", "stall", "duration", "expire_early"))


# --- the service -----------------------------------------------------------------------------------------


def test_marker_or_header_beats_team_rules_which_beat_file_rules():
    from_file = parse_file("rules: [{then: [provider_timeout], repeat: true}]", "f.yaml", OPERATIONS)
    scenarios = service(from_file)
    a = team()
    assert scenarios.resolve(a, call()) == Step("provider_timeout")
    scenarios.add(a, rule(then="block", repeat=True), START)
    assert scenarios.resolve(a, call()) == Step("block")
    assert scenarios.resolve(a, call(), Step("internal_error")) == Step("internal_error")
    own, filed = scenarios.rules(a)
    assert (own.seen, own.hits) == (2, 1)  # counted the request the marker decided, used no step
    assert (filed.seen, filed.hits) == (3, 1)
    assert filed.source == "file"


def test_rules_of_one_team_never_touch_another():
    scenarios = service(parse_file("rules: [{then: [block]}]", "f.yaml", OPERATIONS))
    a, b = team("team_A"), team("team_B")
    scenarios.add(a, rule(then="internal_error", repeat=True), START)
    assert scenarios.resolve(b, call()) == Step("block")  # the file rule, with B's own counter
    assert scenarios.resolve(b, call()) is None
    assert scenarios.resolve(a, call()) == Step("internal_error")
    assert [r.source for r in scenarios.rules(b)] == ["file"]
    assert scenarios.rules(a)[1].hits == 0  # A's copy of the file rule was never used


def test_file_rule_with_keys_applies_to_their_teams_only():
    text = "rules:\n  - {when: {operation: getBalance}, then: rate_limit, keys: [al_live_ci], repeat: true}\n"
    scenarios = service(parse_file(text, "f.yaml", OPERATIONS), team_of={"al_live_ci": "team_A"})
    assert scenarios.resolve(team("team_A"), call("getBalance")) == Step("rate_limit", 1)
    assert scenarios.resolve(team("team_B"), call("getBalance")) is None


def test_rule_ids_are_drawn_per_team_and_delete_and_clear_forget_them():
    scenarios = service()
    a = team()
    first = scenarios.add(a, rule(then="block"), START)
    second = scenarios.add(a, rule(then="fail"), START)
    assert first.id.startswith("scn_")
    assert first.id != second.id
    assert scenarios.delete(a, first.id)
    assert not scenarios.delete(a, first.id)
    assert not scenarios.delete(team("team_B"), second.id)
    assert scenarios.clear(a) == 1
    assert scenarios.rules(a) == []


def test_same_seed_gives_the_same_rule_ids():
    ids = [service().add(team(), rule(then="block"), START).id for _ in range(2)]
    assert ids[0] == ids[1]


# --- the file --------------------------------------------------------------------------------------------


def test_file_rules_parse_with_stable_ids():
    text = """
rules:
  - when: {operation: createVideo}
    then: [fail, {outcome: duration, arg: 30}, succeed]
  - when: {prompt_contains: slow}
    then: "latency=250"
    repeat: true
    keys: [al_live_ci]
"""
    rules = parse_file(text, "s.yaml", OPERATIONS)
    assert [len(r.then) for r in rules] == [3, 1]
    assert rules[1].keys == ("al_live_ci",)
    assert rules[1].repeat
    assert rules[0].id == parse_file(text, "other.yaml", OPERATIONS)[0].id
    assert rules[0].id != rules[1].id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [", "s.yaml: not valid YAML: "),
        ("", "s.yaml: expected a mapping with one key, rules: a list of rules."),
        ("rules: {}", "s.yaml: expected a mapping with one key, rules: a list of rules."),
        ("rules: []\nextra: 1", "s.yaml: expected a mapping with one key, rules: a list of rules."),
        ("rules: [{then: fail}, {then: [succeed, nope]}]", "s.yaml: rules[1].then[1]: Unknown scenario outcome 'nope'"),
        ("rules: [{then: fail, when: {nth: 0}}]", "s.yaml: rules[0].when.nth: when.nth must be between 1 and 1000000."),
        ("rules: [{then: fail, when: {operation: getBalance}}]", "s.yaml: rules[0].then: Scenario outcome 'fail'"),
        ("rules: [{then: fail, keys: [nokey]}]", "s.yaml: rules[0].keys: keys must be a list of API keys"),
        ("rules: [[fail]]", "s.yaml: rules[0]: A scenario rule is an object with when, then and repeat."),
        ("rules: [{when: {}}]", "s.yaml: rules[0].then: Missing required field: then."),
    ],
)
def test_invalid_file_names_file_rule_and_field(text, message):
    with pytest.raises(ScenarioFileError) as raised:
        parse_file(text, "s.yaml", OPERATIONS)
    assert str(raised.value).startswith(message), str(raised.value)
