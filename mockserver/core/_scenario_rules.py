"""Scenario rules: what a rule can match (``Call``, ``When``), the rule and its chain, and their parsers.

Split out of :mod:`mockserver.core.scenarios`, which re-exports what others use. Every parser raises a
``DomainError`` naming the offending field in ``param``; :func:`parse_file` turns it into a
:class:`ScenarioFileError` that names the file, the rule index and the field.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mockserver.clock import rfc3339_or_none
from mockserver.core._scenario_outcomes import UNKNOWN_FIELD, Step, check_operation, parse_step
from mockserver.core.accounts import KEY_PATTERN
from mockserver.core.errors import DomainError, InvalidFormatError, MissingFieldError, ValueOutOfRangeError
from mockserver.ids import stable_ulid

MEDIA = {
    "createImage": "image", "estimateImage": "image",
    "createVideo": "video", "estimateVideo": "video", "getVideo": "video",
}  # fmt: skip
NOT_NULL = "{field} must not be null; omit it to use the default."
UNKNOWN_OPERATION = "Unknown operation {name!r}; use an operationId such as createImage, createVideo or getGeneration."


class ScenarioFileError(ValueError):
    """An invalid scenario file; the message names the file, the rule index and the field."""


@dataclass(frozen=True, slots=True)
class Call:
    """What a rule can match: the operation, the prompt, the request headers and the API key."""

    operation: str
    prompt: str | None
    headers: Mapping[str, str]  # case-insensitive lookups (Starlette's Headers), or lower-case names
    api_key: str


@dataclass(frozen=True, slots=True)
class When:
    operation: str | None = None
    media_type: str | None = None
    prompt_contains: str | None = None
    header: str | None = None  # "Name" (present) or "Name: value" (equal, surrounding spaces ignored)
    nth: int = 1

    def matches(self, call: Call) -> bool:
        if self.operation is not None and call.operation != self.operation:
            return False
        if self.media_type is not None and MEDIA.get(call.operation) != self.media_type:
            return False
        if self.prompt_contains is not None and self.prompt_contains not in (call.prompt or ""):
            return False
        if self.header is not None:
            name, sep, value = self.header.partition(":")
            got = call.headers.get(name.strip().lower())
            if got is None or (sep and got.strip() != value.strip()):
                return False
        return True

    def wire(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class Rule:
    id: str
    when: When
    then: tuple[Step, ...]
    repeat: bool = False
    keys: tuple[str, ...] = ()
    source: str = "team"  # "team" (control plane) | "file"
    created_at: datetime | None = None
    seen: int = 0
    hits: int = 0

    @property
    def operations(self) -> frozenset[str] | None:
        """The operations every step of the chain makes sense for (None: any)."""
        allowed: frozenset[str] | None = None
        for step in self.then:
            ops = step.spec.operations
            if ops is not None:
                allowed = ops if allowed is None else allowed & ops
        return allowed

    @property
    def spent(self) -> bool:
        return not self.repeat and self.hits >= len(self.then)

    @property
    def remaining(self) -> tuple[Step, ...]:
        """The steps still to come in the current pass of the chain."""
        if self.spent:
            return ()
        return self.then[self.hits % len(self.then) :]

    def matches(self, call: Call) -> bool:
        allowed = self.operations
        return (allowed is None or call.operation in allowed) and self.when.matches(call)

    def take(self) -> Step | None:
        """Count a matching request; the step it gets once ``nth`` is reached and the chain is not spent."""
        self.seen += 1
        if self.seen < self.when.nth or self.spent:
            return None
        step = self.then[self.hits % len(self.then)]
        self.hits += 1
        return step

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "scenario",
            "source": self.source,
            "when": self.when.wire(),
            "then": [step.wire() for step in self.then],
            "remaining": [step.wire() for step in self.remaining],
            "repeat": self.repeat,
            "seen": self.seen,
            "hits": self.hits,
            "spent": self.spent,
            "created_at": rfc3339_or_none(self.created_at),
        }


WHEN_FIELDS = ("operation", "media_type", "prompt_contains", "header", "nth")
HEADER_RULE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(:.*)?$")


def _text(data: Mapping[str, Any], name: str, param: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidFormatError(f"{param} must be a non-empty string.", param=param)
    return value


def _refuse_nulls(data: Mapping[str, Any], prefix: str = "") -> None:
    for name, value in data.items():
        if value is None:
            raise InvalidFormatError(NOT_NULL.format(field=f"{prefix}{name}"), param=f"{prefix}{name}")


def parse_when(data: Any, operations: Collection[str]) -> When:
    if not isinstance(data, dict):
        raise InvalidFormatError("when must be an object.", param="when")
    _refuse_nulls(data, "when.")
    for name in data:
        if name not in WHEN_FIELDS:
            expected = ", ".join(WHEN_FIELDS)
            raise InvalidFormatError(UNKNOWN_FIELD.format(field=name, expected=expected), param=f"when.{name}")
    operation = _text(data, "operation", "when.operation")
    if operation is not None and operation not in operations:
        raise InvalidFormatError(UNKNOWN_OPERATION.format(name=operation), param="when.operation")
    media = data.get("media_type")
    if media is not None and media not in ("image", "video"):
        raise InvalidFormatError("when.media_type must be image or video.", param="when.media_type")
    if operation is not None and media is not None and MEDIA.get(operation) != media:
        raise InvalidFormatError(f"{operation} never has media_type {media}.", param="when.media_type")
    header = _text(data, "header", "when.header")
    if header is not None and not HEADER_RULE.match(header):
        raise InvalidFormatError('when.header is "Name" or "Name: value".', param="when.header")
    nth = data.get("nth", 1)
    if not isinstance(nth, int) or isinstance(nth, bool):
        raise InvalidFormatError("when.nth must be an integer.", param="when.nth")
    if not 1 <= nth <= 1_000_000:
        raise ValueOutOfRangeError("when.nth must be between 1 and 1000000.", param="when.nth")
    return When(operation, media, _text(data, "prompt_contains", "when.prompt_contains"), header, nth)


def parse_then(value: Any) -> tuple[Step, ...]:
    if value is None:
        raise MissingFieldError("Missing required field: then.", param="then")
    if not isinstance(value, list):
        return (parse_step(value, "then"),)
    if not 1 <= len(value) <= 100:
        raise ValueOutOfRangeError("then must hold between 1 and 100 outcomes.", param="then")
    return tuple(parse_step(item, f"then[{index}]") for index, item in enumerate(value))


def parse_rule(data: Any, operations: Collection[str], *, with_keys: bool = False) -> Rule:
    """A rule from a control-plane body or a file entry; ``keys`` only in the file (``with_keys``)."""
    if not isinstance(data, dict):
        raise InvalidFormatError("A scenario rule is an object with when, then and repeat.")
    expected = ("when", "then", "repeat", "keys") if with_keys else ("when", "then", "repeat")
    for name in data:
        if name not in expected:
            raise InvalidFormatError(UNKNOWN_FIELD.format(field=name, expected=", ".join(expected)), param=name)
    _refuse_nulls({name: value for name, value in data.items() if name != "then"})
    when = parse_when(data.get("when", {}), operations)
    then = parse_then(data.get("then"))
    repeat = data.get("repeat", False)
    if not isinstance(repeat, bool):
        raise InvalidFormatError("repeat must be true or false.", param="repeat")
    rule = Rule("", when, then, repeat, _keys(data.get("keys", [])))
    for index, step in enumerate(then):
        param = f"then[{index}]" if isinstance(data["then"], list) else "then"
        if when.operation is not None:
            check_operation(step, when.operation, param)
    if rule.operations is not None and when.operation is None and when.media_type is not None:
        if not any(MEDIA.get(op) == when.media_type for op in rule.operations):
            raise InvalidFormatError(f"No operation of these outcomes has media_type {when.media_type}.", param="when")
    return rule


def _keys(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(key, str) and KEY_PATTERN.match(key) for key in value):
        raise InvalidFormatError("keys must be a list of API keys (al_live_… or og_…).", param="keys")
    return tuple(value)


def parse_file(text: str, name: str, operations: Collection[str]) -> tuple[Rule, ...]:
    """The rules of a scenario file (``rules: [{when, then, repeat?, keys?}]``); errors name file, rule, field."""
    import yaml  # only a scenario file needs it: ~30 ms of start-up otherwise (issue 18)

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioFileError(f"{name}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"rules"} or not isinstance(data["rules"], list):
        raise ScenarioFileError(f"{name}: expected a mapping with one key, rules: a list of rules.")
    rules = []
    for index, item in enumerate(data["rules"]):
        try:
            rule = parse_rule(item, operations, with_keys=True)
        except DomainError as exc:
            where = f"rules[{index}]" + (f".{exc.param}" if exc.param else "")
            raise ScenarioFileError(f"{name}: {where}: {exc.detail}") from None
        rule.id = f"scn_{stable_ulid(f'scenario-file:{index}')}"
        rule.source = "file"
        rules.append(rule)
    return tuple(rules)
