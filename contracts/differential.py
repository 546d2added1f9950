"""Differential mode: where two targets answer the same requests differently, even where both meet the spec.

``check(target, against=other)`` sends every generated conformance case to both targets and runs every scripted suite
once per target; this module decides what counts as a difference and records it in the report's ``differential``
suite (the first target is A, the second B).

Two answers agree unless:

- their HTTP statuses differ (``DifferentStatus``; nothing else of that exchange is compared, it follows from it),
  unless one of them is ``429``: rate limits are per team and per moment, so that exchange is not compared;
- their bodies differ in :func:`~contracts.exchanges.shape` (``DifferentShape``, naming each JSON path). Ids, instants,
  prices, counts and messages are compared by JSON type only; enum-like values (``status``, ``code``, ``type``,
  ``object``, ``param`` …) by value. ``null`` matches any value (it is state, not shape). An empty list matches any
  list and compares nothing inside; the items of a non-empty list are merged into one shape per side, and an enum
  key whose values vary among one side's items is compared by type only (which items exist and how far each got is
  state). A key present on one side only is a difference, even where the other side's would have been null;
- the conventional headers present differ, or the media type of ``Content-Type`` (``DifferentHeaders``); header values
  are never compared;
- in a scripted suite, the sequence of steps differs (``DifferentSteps``), or the states one step went through
  (``DifferentStateSequence``). Consecutive exchanges of one step (polling) collapse into the distinct
  (HTTP status, ``status``) they showed: how many polls it took is timing and is not compared, but a state one target
  was seen in and the other was not (``pending → processing → succeeded`` vs ``pending → succeeded``) is.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.exchanges import Exchange
from contracts.session import SuiteRun

__all__ = ["DIFFERENCES", "Difference", "Differential", "compare", "compare_traces", "shape_differences"]

DIFFERENCES = ("DifferentStatus", "DifferentShape", "DifferentHeaders", "DifferentStateSequence", "DifferentSteps")
NULL, STRING = "null", "string"
RATE_LIMITED = 429
_SHOWN_PATHS = 4


@dataclass(frozen=True)
class Difference:
    """One way B's answer differs from A's; ``a`` and ``b`` say what each answered."""

    failure: str
    title: str
    a: str
    b: str
    message: str
    a_exchange: Exchange | None = None
    b_exchange: Exchange | None = None
    step: str | None = None


# -- bodies -----------------------------------------------------------------------------------------------------


def _is_value(shape: Any) -> bool:
    return isinstance(shape, str) and shape.startswith("=")


def _merge(left: Any, right: Any) -> Any:
    """One shape covering two items of the same list."""
    if left == right or right == NULL:
        return left
    if left == NULL:
        return right
    if isinstance(left, dict) and isinstance(right, dict):
        return {key: _merge(left.get(key, NULL), right.get(key, NULL)) for key in sorted(set(left) | set(right))}
    if isinstance(left, list) and isinstance(right, list):
        return _merged([*left, *right])
    if (_is_value(left) or left == STRING) and (_is_value(right) or right == STRING):
        return STRING  # an enum that varies among the items: compared by type only
    return ("one of", *sorted(json.dumps(item, sort_keys=True) for item in (left, right)))


def _merged(kinds: list[Any]) -> list[Any]:
    return [functools.reduce(_merge, kinds)] if kinds else []


def _render(shape: Any) -> str:
    if _is_value(shape):
        return json.dumps(shape[1:])
    if isinstance(shape, dict):
        return "an object"
    if isinstance(shape, list):
        return "a list"
    if isinstance(shape, tuple):
        return " or ".join(shape[1:])
    return {"number": "a number", "string": "a string", "boolean": "a boolean"}.get(shape, str(shape))


def shape_differences(a: Any, b: Any, path: str = "$") -> list[tuple[str, str, str]]:
    """The JSON paths where two body shapes differ, with what each side has there.

    Example:
        >>> shape_differences({"status": "=pending", "id": "string"}, {"state": "=pending", "id": "string"})
        [('$.state', 'absent', '"pending"'), ('$.status', '"pending"', 'absent')]
        >>> shape_differences({"error": {"code": "=not_found"}}, {"error": {"code": "=resource_not_found"}})
        [('$.error.code', '"not_found"', '"resource_not_found"')]
        >>> shape_differences({"data": [], "x": "null"}, {"data": [{"id": "string"}], "x": "number"})
        []
    """
    if a == b or NULL in (a, b):
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[tuple[str, str, str]] = []
        for key in sorted(set(a) | set(b)):
            where = f"{path}.{key}"
            if key not in b:
                found.append((where, _render(a[key]), "absent"))
            elif key not in a:
                found.append((where, "absent", _render(b[key])))
            else:
                found += shape_differences(a[key], b[key], where)
        return found
    if isinstance(a, list) and isinstance(b, list):
        return shape_differences(_merged(a)[0], _merged(b)[0], f"{path}[]") if a and b else []
    if STRING in (a, b) and (_is_value(a) or _is_value(b)):
        return []  # a merged enum against one value
    return [(path, _render(a), _render(b))]


# -- one exchange -----------------------------------------------------------------------------------------------


def _header_name(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def compare(a: Exchange, b: Exchange, step: str | None = None) -> list[Difference]:
    """What differs between two answers to the same request."""
    where = f"{a.method} {a.path}" + (f" (step {step!r})" if step else "")
    if a.status != b.status and RATE_LIMITED in (a.status, b.status):
        return []  # one target declined to answer now: rate limits are per team and time, not this request's contract
    if a.status != b.status:
        message = f"{where}: A answered HTTP {a.status}, B answered HTTP {b.status}."
        return [
            Difference(
                "DifferentStatus", f"HTTP {a.status} vs {b.status}", str(a.status), str(b.status), message, a, b, step
            )
        ]
    found: list[Difference] = []
    paths = shape_differences(a.body_shape, b.body_shape)
    if paths:
        shown = ", ".join(path for path, _, _ in paths[:_SHOWN_PATHS]) + (" …" if len(paths) > _SHOWN_PATHS else "")
        found.append(
            Difference(
                "DifferentShape",
                f"Bodies differ at {shown}",
                "; ".join(f"{path}: {side}" for path, side, _ in paths),
                "; ".join(f"{path}: {side}" for path, _, side in paths),
                f"{where}, HTTP {a.status} on both: " + "; ".join(f"{p} is {x} on A, {y} on B" for p, x, y in paths),
                a,
                b,
                step,
            )
        )
    only_a, only_b = sorted(set(a.headers) - set(b.headers)), sorted(set(b.headers) - set(a.headers))
    if only_a or only_b or a.content_type != b.content_type:
        parts = [f"{_header_name(name)} only on A" for name in only_a] + [
            f"{_header_name(name)} only on B" for name in only_b
        ]
        if a.content_type != b.content_type:
            parts.append(f"Content-Type {a.content_type} vs {b.content_type}")
        found.append(
            Difference(
                "DifferentHeaders",
                "Headers differ: " + ", ".join(parts),
                ", ".join(map(_header_name, a.headers)) + f"; Content-Type {a.content_type}",
                ", ".join(map(_header_name, b.headers)) + f"; Content-Type {b.content_type}",
                f"{where}, HTTP {a.status} on both: " + "; ".join(parts),
                a,
                b,
                step,
            )
        )
    return found


# -- traces of scripted suites ----------------------------------------------------------------------------------


def _runs(trace: Sequence[Exchange]) -> list[tuple[str, list[Exchange]]]:
    runs: list[tuple[str, list[Exchange]]] = []
    for item in trace:
        if runs and runs[-1][0] == item.step:
            runs[-1][1].append(item)
        else:
            runs.append((item.step, [item]))
    return runs


def _state(item: Exchange) -> str | None:
    value = item.body_shape.get("status") if isinstance(item.body_shape, dict) else None
    return value[1:] if isinstance(value, str) and _is_value(value) else None


Key = tuple[int, str | None]  # (HTTP status, the body's `status`)


def _collapsed(run: list[Exchange], prior: str | None) -> list[tuple[Key, Exchange]]:
    """The distinct (HTTP status, state) a step went through, each with its first exchange; a leading state the
    previous step already showed (``prior``: the create said ``pending``, the first polls still do) is not new."""
    groups: list[tuple[Key, Exchange]] = []
    for item in run:
        key = (item.status, _state(item))
        if not groups and prior is not None and key[1] == prior:
            continue
        if not groups or groups[-1][0] != key:
            groups.append((key, item))
    return groups


def _sequence(groups: list[tuple[Key, Exchange]], prior: str | None) -> str:
    one_status = len({status for (status, _), _ in groups}) <= 1
    shown = [state if one_status and state else f"{status} {state or ''}".strip() for (status, state), _ in groups]
    return " → ".join(([prior] if prior else []) + shown)


def _unique(found: list[Difference]) -> list[Difference]:
    kept: dict[tuple[str, str], Difference] = {}
    for item in found:
        kept.setdefault((item.failure, item.title), item)
    return list(kept.values())


def _compare_runs(
    step: str, a_run: list[Exchange], b_run: list[Exchange], a_prior: str | None, b_prior: str | None
) -> list[Difference]:
    a_groups, b_groups = _collapsed(a_run, a_prior), _collapsed(b_run, b_prior)
    if [key for key, _ in a_groups] == [key for key, _ in b_groups]:
        pairs = [(x, y) for (_, x), (_, y) in zip(a_groups, b_groups, strict=True)] or [(a_run[0], b_run[0])]
        return _unique([found for x, y in pairs for found in compare(x, y, step)])
    stateful = all(state for (_, state), _ in a_groups + b_groups)
    if stateful and (len(a_run) > 1 or len(b_run) > 1):
        a_seq, b_seq = _sequence(a_groups, a_prior), _sequence(b_groups, b_prior)
        only = sorted(set(a_seq.split(" → ")) ^ set(b_seq.split(" → ")))
        message = (
            f"Step {step!r} ({a_run[0].method} {a_run[0].path}) went through {a_seq} on A ({len(a_run)} requests) "
            f"and {b_seq} on B ({len(b_run)} requests)"
            + (f"; seen on one side only: {', '.join(only)}." if only else ".")
        )
        first_a, first_b = (a_groups or [((0, None), a_run[0])])[0][1], (b_groups or [((0, None), b_run[0])])[0][1]
        return [
            Difference(
                "DifferentStateSequence", f"{step}: {a_seq} vs {b_seq}", a_seq, b_seq, message, first_a, first_b, step
            )
        ]
    return _unique(compare(a_run[0], b_run[0], step) + compare(a_run[-1], b_run[-1], step))


def compare_traces(a: Sequence[Exchange], b: Sequence[Exchange]) -> list[Difference]:
    """What differs between two runs of one scripted suite, step by step."""
    a_runs, b_runs = _runs(a), _runs(b)
    a_steps, b_steps = [step for step, _ in a_runs], [step for step, _ in b_runs]
    found: list[Difference] = []
    matcher = difflib.SequenceMatcher(a=a_steps, b=b_steps, autojunk=False)
    if a_steps != b_steps:
        changes = []
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                mine, theirs = " → ".join(a_steps[i1:i2]) or "(nothing)", " → ".join(b_steps[j1:j2]) or "(nothing)"
                changes.append(f"A: {mine} where B: {theirs}")
        found.append(
            Difference(
                "DifferentSteps",
                "The suite took different steps",
                " → ".join(a_steps),
                " → ".join(b_steps),
                "; ".join(changes),
            )
        )
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            i, j = block.a + offset, block.b + offset
            (step, a_run), (_, b_run) = a_runs[i], b_runs[j]
            found += _compare_runs(step, a_run, b_run, _prior(a_runs, i), _prior(b_runs, j))
    return found


def _prior(runs: list[tuple[str, list[Exchange]]], index: int) -> str | None:
    """The state the step before left things in (what a poll right after a create still sees)."""
    return _state(runs[index - 1][1][-1]) if index > 0 else None


# -- the report's differential suite ----------------------------------------------------------------------------


class Differential:
    """Records what two targets answered differently in the ``differential`` suite.

    Args:
        suite: the ``differential`` suite's run.
        replay: the command that replays a difference, from the suite and operationId (``None``: the whole suite).
    """

    def __init__(self, suite: SuiteRun, replay: Callable[[str, str | None], str]) -> None:
        self.suite, self._replay = suite, replay

    def record(self, operation: str, difference: Difference, *, suite: str, operation_id: str | None) -> None:
        a, b = difference.a_exchange, difference.b_exchange
        finding = self.suite.finding(
            operation,
            difference.failure,
            difference.title,
            difference.message,
            expected=difference.a,
            actual=difference.b,
            curl=a.curl if a is not None else None,
            against_curl=b.curl if b is not None else None,
            count=False,
        )
        finding.replay = self._replay(suite, operation_id)

    def compare_case(self, suite: str, operation: str, operation_id: str, a: Exchange, b: Exchange) -> None:
        """One generated case, sent to both targets."""
        outcome = self.suite.operation(f"{suite}: {operation}")
        outcome.operation_id, outcome.cases = operation_id, outcome.cases + 1
        differences = compare(a, b)
        outcome.failed += bool(differences)
        for difference in differences:
            self.record(outcome.operation, difference, suite=suite, operation_id=operation_id)

    def compare_suite(self, suite: str, a: Sequence[Exchange], b: Sequence[Exchange]) -> None:
        """One scripted suite, run once on each target."""
        if not a and not b:
            return  # the suite records no exchanges (e.g. the lifecycle model's generated programs)
        outcome = self.suite.operation(suite)
        outcome.cases += len(_runs(a))
        for difference in compare_traces(a, b):
            operation = f"{suite}: {difference.step}" if difference.step else suite
            self.suite.operation(operation).failed += 1
            self.record(operation, difference, suite=suite, operation_id=None)
