"""The reply maker and the schema instance generator: deterministic, honouring limits, valid for any schema."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core import jsonschema_instance, replies, tokens

CALLS = iter(f"call_{i}" for i in range(10**6))


def ask(prompt: str = "How do I plan a garden?", fingerprint: bytes = b"a", **extra: Any) -> replies.Ask:
    return replies.Ask(fingerprint=fingerprint, prompt=prompt, max_tokens=extra.pop("max_tokens", 4000), **extra)


def make(a: replies.Ask, seed: int | None = 1) -> replies.Reply:
    return replies.make(a, seed=seed, new_call_id=lambda: next(CALLS))


def test_reply_is_deterministic_in_seed_and_request() -> None:
    assert make(ask()) == make(ask())
    assert make(ask()).content != make(ask(fingerprint=b"b")).content
    assert make(ask()).content != make(ask(), seed=2).content


def test_reply_is_prose_not_an_echo() -> None:
    prompt = "Explain the difference between optimistic and pessimistic locking in databases"
    text = make(ask(prompt)).content or ""
    assert prompt not in text
    assert text.endswith((".", "!", "?"))
    assert len(text.split()) > 10


def test_pieces_are_single_tokens_that_join_to_the_content() -> None:
    reply = make(ask())
    assert "".join(reply.pieces) == reply.content
    assert all(tokens.count_text(piece) == 1 for piece in reply.pieces)
    assert len(reply.pieces) == tokens.count_text(reply.content or "")


@given(limit=st.integers(min_value=1, max_value=300))
def test_max_tokens_is_never_exceeded_and_length_is_reported(limit: int) -> None:
    full = make(ask()).content or ""
    reply = make(ask(max_tokens=limit))
    assert tokens.count_text(reply.content or "") <= limit
    assert full.startswith(reply.content or "")
    assert reply.finish_reason == ("length" if tokens.count_text(full) > limit else "stop")


def test_json_object_parses_and_scripted_text_is_used_verbatim() -> None:
    assert isinstance(json.loads(make(ask(response_format={"type": "json_object"})).content or ""), dict)
    assert make(ask(scripted="Exactly this.")).content == "Exactly this."


def test_forced_tool_call_arguments_fit_the_schema() -> None:
    tool = {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    }
    reply = make(ask(tool=tool))
    assert reply.finish_reason == "tool_calls"
    assert reply.content is None
    [call] = reply.tool_calls
    jsonschema.validate(json.loads(call.arguments), tool["parameters"])
    assert reply.text() == call.arguments


# --- any schema (of the structured-output subset) → a valid instance --------------------------------------------

SMALL, SPAN = st.integers(0, 10), st.integers(0, 20)
LEAVES = st.one_of(
    st.builds(lambda lo, span: {"type": "string", "minLength": lo, "maxLength": lo + span}, SMALL, SPAN),
    st.sampled_from([{"type": "string", "format": f} for f in ("date-time", "date", "email", "uri", "uuid", "ipv4")]),
    st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span}, st.integers(-99, 99), SPAN),
    st.builds(lambda lo: {"type": "number", "exclusiveMinimum": lo}, st.integers(-5, 5)),
    st.just({"type": "integer", "multipleOf": 7}),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.just({"type": ["string", "null"]}),
    st.lists(st.one_of(st.text(max_size=5), st.integers()), min_size=1, max_size=4, unique=True).map(
        lambda values: {"enum": values}
    ),
    st.just({"type": "string", "pattern": "^[a-z]{3}-[0-9]{2}$"}),
)  # fmt: skip


def _object(children: dict[str, Any], required: list[bool], closed: bool) -> dict[str, Any]:
    names = list(children)
    schema = {
        "type": "object",
        "properties": children,
        "required": [n for n, r in zip(names, required, strict=False) if r],
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


SCHEMAS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.builds(
            _object,
            st.dictionaries(st.from_regex(r"\A[a-z_]{1,8}\Z"), inner, max_size=4),
            st.lists(st.booleans(), max_size=4),
            st.booleans(),
        ),
        st.builds(
            lambda items, lo, span: {"type": "array", "items": items, "minItems": lo, "maxItems": lo + span},
            inner,
            st.integers(0, 3),
            st.integers(0, 3),
        ),
        st.lists(inner, min_size=1, max_size=3).map(lambda options: {"anyOf": options}),
    ),
    max_leaves=12,
)


@pytest.mark.slow
@settings(max_examples=300)
@given(schema=SCHEMAS, seed=st.integers(0, 2**32))
def test_any_schema_of_the_subset_gets_a_valid_instance(schema: dict[str, Any], seed: int) -> None:
    value = jsonschema_instance.instance(schema, random.Random(seed))
    jsonschema.validate(value, schema)
    assert jsonschema_instance.instance(schema, random.Random(seed)) == value  # deterministic


def test_unique_items_are_distinct() -> None:
    schema = {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 9},
        "minItems": 3,
        "uniqueItems": True,
    }
    for seed in range(20):
        jsonschema.validate(jsonschema_instance.instance(schema, random.Random(seed)), schema)


def test_refs_into_defs_are_followed_and_depth_restarts_at_a_ref() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/node"}},
        "required": ["node"],
        "$defs": {"node": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
    }
    jsonschema.validate(jsonschema_instance.instance(schema, random.Random(1)), schema)
    assert jsonschema_instance.depth({"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}}) == 2


def test_unusable_schemas_are_named() -> None:
    with pytest.raises(jsonschema_instance.SchemaUnusableError, match="local"):
        jsonschema_instance.check({"$ref": "https://example.com/schema.json"})
    with pytest.raises(jsonschema_instance.SchemaUnusableError, match="invalid"):
        jsonschema_instance.check({"type": "no-such-type"})
