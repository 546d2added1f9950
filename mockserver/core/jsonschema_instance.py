"""A JSON value valid against a JSON Schema, drawn from a seeded random stream (structured output, tool arguments).

The vendor's structured-output subset (type, properties, required, additionalProperties, enum, items,
anyOf/oneOf, ``$ref`` into ``$defs``, description, and best-effort pattern/format/bounds) is generated directly,
which is fast and deterministic; every candidate is checked with ``jsonschema_rs`` (the Rust validator: a 400-item
instance in 30 µs, where the pure-Python ``jsonschema`` took 10 ms) and redrawn if it fails. A
``pattern`` is drawn from the pattern's parse tree (the standard library's own ``re`` parser). No library turns a
schema into one seeded value cheaply at request time (hypothesis-jsonschema needs a whole Hypothesis run per value,
and cannot run inside a test that is itself a Hypothesis test), hence this module.
"""

from __future__ import annotations

import importlib
import json
import random
import re
import string
from typing import Any

import jsonschema_rs

# The standard library's own regular-expression parser (private modules, stable since Python 3.11).
re_parser: Any = importlib.import_module("re._parser")
re_constants: Any = importlib.import_module("re._constants")

ATTEMPTS = 12
MAX_DEPTH = 24
_WORDS = ("alpha", "delta", "river", "summit", "maple", "ember", "harbor", "quartz", "linen", "orbit", "cedar")
_FORMATS: dict[str, Any] = {
    "date-time": lambda r: f"2026-0{r.randint(1, 9)}-1{r.randint(0, 9)}T{r.randint(10, 23)}:{r.randint(10, 59)}:00Z",
    "date": lambda r: f"2026-0{r.randint(1, 9)}-1{r.randint(0, 9)}",
    "time": lambda r: f"{r.randint(10, 23)}:{r.randint(10, 59)}:00Z",
    "email": lambda r: f"{r.choice(_WORDS)}@example.com",
    "uri": lambda r: f"https://example.com/{r.choice(_WORDS)}",
    "url": lambda r: f"https://example.com/{r.choice(_WORDS)}",
    "hostname": lambda r: f"{r.choice(_WORDS)}.example.com",
    "ipv4": lambda r: f"192.0.2.{r.randint(1, 254)}",
    "ipv6": lambda r: f"2001:db8::{r.randint(1, 9999)}",
    "uuid": lambda r: _uuid(r),
}


def _uuid(r: random.Random) -> str:
    a, b, c, d, e = (r.getrandbits(n) for n in (32, 16, 12, 12, 48))
    return f"{a:08x}-{b:04x}-4{c:03x}-8{d:03x}-{e:012x}"


class SchemaUnusableError(ValueError):
    """The schema is not a valid JSON Schema, or refers outside itself."""


def check(schema: Any) -> None:
    """Raise :class:`SchemaUnusableError` unless ``schema`` is a valid JSON Schema with local ``$ref`` only."""
    if not isinstance(schema, dict | bool):
        raise SchemaUnusableError("The schema must be a JSON object.")
    for ref in _refs(schema):
        if not ref.startswith("#"):
            raise SchemaUnusableError(f"Only local $ref (#/...) is supported, not {ref!r}.")
    try:
        jsonschema_rs.meta.validate(schema)
        jsonschema_rs.validator_for(schema)  # compiles: a bad pattern or a dangling local $ref fails here
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchemaUnusableError(f"The schema is invalid: {reason}") from None


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def depth(node: Any, *, level: int = 0) -> int:
    """How deeply ``node``'s subschemas nest; a ``$ref`` starts counting again (the vendor's rule)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return level
        children = [v for k, v in node.items() if k not in ("enum", "const", "examples", "default")]
        return max([depth(child, level=level + 1) for child in children] or [level])
    if isinstance(node, list):
        return max([depth(child, level=level) for child in node] or [level])
    return level


def instance(schema: Any, rng: random.Random) -> Any:
    """A value valid against ``schema`` (the first of a few seeded draws that validates; else the last draw)."""
    try:
        validator = jsonschema_rs.validator_for(schema)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError):
        validator = None  # not compilable (not checked first): best effort
    value: Any = None
    for _ in range(ATTEMPTS):
        value = _Gen(schema, rng).value(schema, 0)
        if validator is None or validator.is_valid(value):
            return value
    return value


class _Gen:
    def __init__(self, root: Any, rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, ref: str) -> Any:
        node = self.root
        for part in ref.lstrip("#").split("/"):
            if part:
                part = part.replace("~1", "/").replace("~0", "~")
                node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def value(self, schema: Any, level: int) -> Any:
        if schema is True or schema == {}:
            return self.rng.choice(_WORDS)
        if not isinstance(schema, dict) or level > MAX_DEPTH:
            return None
        if "$ref" in schema:
            return self.value(self.resolve(schema["$ref"]), level + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        if isinstance(schema.get("allOf"), list):
            return self.value(_merge(schema, [self._deref(s) for s in schema["allOf"]]), level + 1)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                base = {k: v for k, v in schema.items() if k != key}
                return self.value(_merge(base, [self._deref(self.rng.choice(options))]), level + 1)
        kind = self._type(schema)
        return getattr(self, f"_{kind}")(schema, level)

    def _deref(self, schema: Any) -> Any:
        return self.resolve(schema["$ref"]) if isinstance(schema, dict) and "$ref" in schema else schema

    def _type(self, schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or kind
            kind = self.rng.choice(kinds) if kinds else None
        if kind in ("object", "array", "string", "integer", "number", "boolean", "null"):
            return str(kind)
        if "properties" in schema or "required" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
            return "number"
        return "string"

    def _object(self, schema: dict[str, Any], level: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        required = [name for name in schema.get("required") or [] if isinstance(name, str)]
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or self.rng.random() < 0.7:
                out[name] = self.value(sub, level + 1)
        extra = schema.get("additionalProperties", True)
        for name in required:
            if name not in out:
                out[name] = self.value(extra if isinstance(extra, dict) else True, level + 1)
        minimum = schema.get("minProperties") or 0
        n = 0
        while len(out) < minimum and extra is not False:
            out[f"{self.rng.choice(_WORDS)}_{n}"] = self.value(extra if isinstance(extra, dict) else True, level + 1)
            n += 1
        return out

    def _array(self, schema: dict[str, Any], level: int) -> list[Any]:
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", True)
        low = max(int(schema.get("minItems") or 0), len(prefix))
        high = max(low, min(int(schema.get("maxItems", low + 3)), low + 3))
        size = self.rng.randint(low, high) if items is not False else len(prefix)
        out = [self.value(prefix[i], level + 1) for i in range(min(size, len(prefix)))]
        seen = {json.dumps(v, sort_keys=True) for v in out}
        tries = 0
        while len(out) < size and tries < size * 4:
            tries += 1
            value = self.value(items, level + 1)
            key = json.dumps(value, sort_keys=True)
            if schema.get("uniqueItems") and key in seen:
                continue
            seen.add(key)
            out.append(value)
        return out

    def _string(self, schema: dict[str, Any], level: int) -> str:
        low = int(schema.get("minLength") or 0)
        high = int(schema.get("maxLength", max(low, 24)))
        if isinstance(schema.get("pattern"), str):
            return _from_regex(schema["pattern"], low, high, self.rng.getrandbits(64))
        make = _FORMATS.get(str(schema.get("format")))
        text = make(self.rng) if make is not None else " ".join(self.rng.sample(_WORDS, self.rng.randint(1, 3)))
        if len(text) < low:
            text += "".join(self.rng.choice(string.ascii_lowercase) for _ in range(low - len(text)))
        return text[:high]

    def _number(self, schema: dict[str, Any], level: int) -> float | int:
        low, high = _bounds(schema, 0.0, 100.0)
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            first, last = int(-(-low // step)), int(high // step)
            return self.rng.randint(first, max(first, last)) * step
        return round(self.rng.uniform(low, high), 2) if high > low else low

    def _integer(self, schema: dict[str, Any], level: int) -> int:
        low, high = _bounds(schema, 0, 100)
        first, last = int(-(-low // 1)), int(high // 1)
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            return self.rng.randint(-(-first // step), max(-(-first // step), last // step)) * step
        return self.rng.randint(first, max(first, last))

    def _boolean(self, schema: dict[str, Any], level: int) -> bool:
        return self.rng.random() < 0.5

    def _null(self, schema: dict[str, Any], level: int) -> None:
        return None


def _bounds(schema: dict[str, Any], low: float, high: float) -> tuple[float, float]:
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    nudge_lo = 1 if "minimum" not in schema and "exclusiveMinimum" in schema else 0
    nudge_hi = 1 if "maximum" not in schema and "exclusiveMaximum" in schema else 0
    if isinstance(lo, int | float) and not isinstance(lo, bool):
        low = lo + nudge_lo
        high = max(high, low + 100)
    if isinstance(hi, int | float) and not isinstance(hi, bool):
        high = hi - nudge_hi
        low = min(low, high - 100) if lo is None else low
    return low, high


def _merge(base: dict[str, Any], parts: list[Any]) -> dict[str, Any]:
    """A schema with ``parts`` folded into ``base``: properties merged, ``required`` united (good enough for
    the ``allOf`` / ``anyOf`` shapes structured output uses)."""
    merged = {k: v for k, v in base.items() if k not in ("allOf",)}
    for part in parts:
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged[key] = value
    return merged


def _from_regex(pattern: str, low: int, high: int, seed: int) -> str:
    """A string matching ``pattern`` (``re.search`` semantics, as JSON Schema has it), or ``"x" * low`` when the
    pattern uses what :func:`_emit` does not cover (best effort, as the vendor's own decoder)."""
    rng = random.Random(seed)
    try:
        parsed = re_parser.parse(pattern)
    except re.error:
        return "x" * low
    compiled = re.compile(pattern)
    for _ in range(ATTEMPTS):
        try:
            text = _emit(parsed, rng)
        except (ValueError, IndexError, KeyError):
            break
        if low <= len(text) <= high and compiled.search(text):
            return text
    return "x" * low


_CATEGORIES = {
    re_constants.CATEGORY_DIGIT: string.digits,
    re_constants.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    re_constants.CATEGORY_SPACE: " ",
    re_constants.CATEGORY_NOT_DIGIT: string.ascii_letters,
    re_constants.CATEGORY_NOT_WORD: " -.",
    re_constants.CATEGORY_NOT_SPACE: string.ascii_letters,
}


def _emit(parsed: Any, rng: random.Random) -> str:
    """A string produced by a parsed regular expression (``re._parser``): literals, classes, repeats, groups,
    alternation and anchors; anything else raises ``ValueError``."""
    out: list[str] = []
    for op, arg in parsed:
        if op is re_constants.LITERAL:
            out.append(chr(arg))
        elif op is re_constants.ANY:
            out.append(rng.choice(string.ascii_letters))
        elif op is re_constants.IN:
            out.append(_from_class(arg, rng))
        elif op in (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT, re_constants.POSSESSIVE_REPEAT):
            low, high, inner = arg
            high = low + 3 if high is re_constants.MAXREPEAT else high
            out.extend(_emit(inner, rng) for _ in range(rng.randint(low, max(low, min(high, low + 3)))))
        elif op is re_constants.SUBPATTERN:
            out.append(_emit(arg[-1], rng))
        elif op is re_constants.BRANCH:
            out.append(_emit(rng.choice(arg[1]), rng))
        elif op is re_constants.AT:
            continue
        else:
            raise ValueError(f"unsupported regular expression element {op}")
    return "".join(out)


def _from_class(items: Any, rng: random.Random) -> str:
    choices: list[str] = []
    for op, arg in items:
        if op is re_constants.NEGATE:
            raise ValueError("negated class")
        if op is re_constants.LITERAL:
            choices.append(chr(arg))
        elif op is re_constants.RANGE:
            choices.extend(chr(c) for c in range(arg[0], min(arg[1], arg[0] + 200) + 1))
        elif op is re_constants.CATEGORY:
            choices.extend(_CATEGORIES[arg])
        else:
            raise ValueError(f"unsupported class element {op}")
    return rng.choice(choices)
