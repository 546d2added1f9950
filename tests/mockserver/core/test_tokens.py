"""The token counter: the documented ``chars/4`` recipe, images by tier, and splits that add up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mockserver.core import tokens


def test_count_text_is_ceil_of_chars_over_four() -> None:
    assert tokens.count_text("") == 0
    assert tokens.count_text("abc") == 1
    assert tokens.count_text("abcd") == 1
    assert tokens.count_text("abcde") == 2
    assert tokens.count_text("日本語のテキスト") == 2  # code points, not bytes


@given(st.text(max_size=200))
def test_split_pieces_join_back_and_count_the_same(text: str) -> None:
    pieces = tokens.split(text)
    assert "".join(pieces) == text
    assert len(pieces) == tokens.count_text(text)
    assert all(tokens.count_text(p) == 1 for p in pieces)


@given(st.text(max_size=200), st.integers(min_value=0, max_value=60))
def test_truncate_never_exceeds_max_tokens(text: str, limit: int) -> None:
    cut = tokens.truncate(text, limit)
    assert text.startswith(cut)
    assert tokens.count_text(cut) <= limit
    assert cut == text or tokens.count_text(cut) == limit


def test_messages_add_overhead_name_and_tool_calls() -> None:
    plain = tokens.count_prompt([{"role": "user", "content": "abcdefgh"}])
    assert plain == tokens.PromptTokens(text=2 + tokens.MESSAGE_OVERHEAD)
    call = {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"a":1}'}}
    assistant = tokens.count_message({"role": "assistant", "content": None, "tool_calls": [call], "name": "bot"})
    assert assistant.total == tokens.MESSAGE_OVERHEAD + 1 + 1 + 2


def test_images_count_by_detail_tier_and_vision_quality() -> None:
    def image(detail: str | None) -> dict[str, object]:
        spec: dict[str, object] = {"url": "https://example.com/a.png"}
        if detail:
            spec["detail"] = detail
        return {"type": "image_url", "image_url": spec}

    message = {"role": "user", "content": [image("low"), image("high"), image(None), {"type": "text", "text": "hi"}]}
    counted = tokens.count_prompt([message])
    assert counted.image == 512 + 1024 + 1024
    assert counted.text == 1 + tokens.MESSAGE_OVERHEAD
    assert tokens.count_prompt([message], vision_quality="xhigh").image == 3 * 2048


def test_tool_definitions_count_as_their_canonical_json() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    messages = [{"role": "user", "content": ""}]
    with_tools = tokens.count_prompt(messages, tools=[tool]).total
    assert with_tools - tokens.count_prompt(messages).total == tokens.count_json([tool]) > 0


def test_embedding_input_counts_text_and_1024_per_image() -> None:
    assert tokens.count_embedding_input("a" * 2000) == tokens.PromptTokens(text=500)
    parts = [
        {"type": "text", "text": "abcdefgh"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
    ]
    assert tokens.count_embedding_input(parts) == tokens.PromptTokens(text=2, image=2048)
