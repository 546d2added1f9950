"""Scenarios: outcomes, rules (when → a chain of outcomes), what they do to a generation, and the service.

One registry, :data:`OUTCOMES`, names every scripted outcome; prompt markers (``[mock:fail]``), the
``Aurous-Mock-Scenario`` header, the control plane and the scenario file all use these names. An outcome
is *generation*-level (shapes the generation a create makes), *request*-level (the request itself fails,
nothing is created or billed), *webhook*-level (shapes the deliveries of the generation's events) or
*completion*-level (shapes a chat completion: its reply text, a forced tool call, a slow first token, an error
frame or a dropped connection mid-stream; ``core.chat`` and ``api.chat`` read the step).

For one request the first of these decides: a prompt marker, the header, the team's rules (creation
order), the file's rules (file order). Every rule whose ``when`` matches counts the request (``seen``),
whichever source decides it, so ``nth: 2`` means "the 2nd request matching ``when``"; only the deciding
rule uses a step of its chain (``hits``). A rule is spent when its chain is used up, unless ``repeat``.

The registry and steps live in ``_scenario_outcomes``, rules and their parsers in ``_scenario_rules``;
this module re-exports them and owns the effects and the per-team service.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mockserver.core._scenario_outcomes import (
    CHATS,
    COMPLETION,
    CREATES,
    DEFAULT_FAILURE,
    GENERATION,
    KNOWN,
    LLM,
    MARKER_OPEN,
    OUTCOMES,
    REQUEST,
    SYNTHESES,
    UNKNOWN,
    WEBHOOK,
    Outcome,
    Step,
    check_operation,
    header_steps,
    make_step,
    markers,
    parse_step,
)
from mockserver.core._scenario_rules import MEDIA, Call, Rule, ScenarioFileError, When, parse_file, parse_rule
from mockserver.core.models import JobStatus, Team
from mockserver.core.webhooks import DeliveryPlan
from mockserver.ids import IdSource
from mockserver.store import Store

__all__ = [
    # the registry and steps
    "CHATS", "COMPLETION", "CREATES", "DEFAULT_FAILURE", "GENERATION", "KNOWN", "LLM", "MARKER_OPEN", "OUTCOMES",
    "REQUEST", "SYNTHESES", "UNKNOWN", "WEBHOOK",
    "Outcome", "Step", "check_operation", "header_steps", "make_step", "markers", "parse_step",
    # rules and the file
    "MEDIA", "Call", "Rule", "ScenarioFileError", "When", "parse_file", "parse_rule",
    # effects and the service
    "NEVER", "Scenarios", "delivery_plan", "output_ttl", "recorded", "terminal", "timeline",
]  # fmt: skip

# Beyond the control plane's clock horizon (year 9000): a stalled generation never reaches it.
NEVER = datetime(9999, 1, 1, tzinfo=UTC)
BOOK = "scenario_book"


# --- what happens to a generation, an output, a delivery ------------------------------------------------


def timeline(step: Step | None, started: datetime, finished: datetime) -> tuple[datetime, datetime]:
    """The (start of processing, finish) instants a generation-level step imposes."""
    if step is None:
        return started, finished
    if step.outcome == "stall":
        return started, NEVER
    if step.outcome == "stall_pending":
        return NEVER, NEVER
    if step.outcome == "duration":
        return started, started + timedelta(seconds=float(step.arg or 0))
    return started, finished


def terminal(step: Step | None) -> tuple[JobStatus, str | None]:
    """The status reached at the finish instant and its ``error_message``."""
    if step is not None and step.outcome == "fail":
        return JobStatus.FAILED, str(step.arg)
    return JobStatus.SUCCEEDED, None


def recorded(step: Step | None) -> dict[str, Any]:
    """What a generation keeps in ``params`` (read back by outputs and webhooks)."""
    return {"scenario": step.wire()} if step is not None and step.level != REQUEST else {}


def _kept(params: Mapping[str, Any]) -> tuple[str | None, Any]:
    kept = params.get("scenario") or {}
    return kept.get("outcome"), kept.get("arg")


def output_ttl(params: Mapping[str, Any], default: float) -> float:
    outcome, arg = _kept(params)
    return float(arg) if outcome == "expire_early" else default


def delivery_plan(params: Mapping[str, Any]) -> DeliveryPlan:
    outcome, arg = _kept(params)
    if outcome == "webhook_delay":
        return DeliveryPlan(delay=float(arg))
    if outcome == "webhook_duplicate":
        return DeliveryPlan(copies=2)
    if outcome == "webhook_out_of_order":
        return DeliveryPlan(last=True)
    return DeliveryPlan()


# --- the service --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Book:
    """A team's scenario state: its own rules (creation order) and its counters of the file's rules."""

    rules: list[Rule] = field(default_factory=list)
    file_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # rule id → (seen, hits)


class Scenarios:
    """Per-team rules in the ``Store`` (so reset and snapshot cover them) plus the file's rules for every team."""

    def __init__(self, store: Store, ids: IdSource, team_of: Callable[[str], str]) -> None:
        self.store = store
        self.ids = ids
        self.team_of = team_of  # the team of an API key named by a file rule
        self.operations: frozenset[str] = frozenset()
        self.file_rules: tuple[Rule, ...] = ()

    def configure(self, operations: Collection[str], file_rules: tuple[Rule, ...] = ()) -> None:
        """The operationIds a rule may name (the route table) and the scenario file's rules."""
        self.operations = frozenset(operations)
        self.file_rules = file_rules

    def _book(self, team: Team) -> Book:
        book: Book | None = self.store.get(BOOK, team.id)
        return book if book is not None else Book()

    def _file_rules(self, team: Team, book: Book) -> list[Rule]:
        """The file's rules that apply to the team, carrying the team's own counters."""
        rules = []
        for rule in self.file_rules:
            if rule.keys and team.id not in {self.team_of(key) for key in rule.keys}:
                continue
            seen, hits = book.file_counts.get(rule.id, (0, 0))
            rules.append(dataclasses.replace(rule, seen=seen, hits=hits))
        return rules

    def add(self, team: Team, rule: Rule, now: datetime) -> Rule:
        with self.store.transaction():
            rule.id = self.ids.new("scn", at=now, scope=team.id)
            rule.created_at = now
            book = self._book(team)
            book.rules.append(rule)
            self.store.put(BOOK, team.id, book, owner=team.id)
        return rule

    def rules(self, team: Team) -> list[Rule]:
        """The team's rules, then the file's rules that apply to it: the order they are tried in."""
        book = self._book(team)
        return [*book.rules, *self._file_rules(team, book)]

    def is_file_rule(self, rule_id: str) -> bool:
        return any(rule.id == rule_id for rule in self.file_rules)

    def delete(self, team: Team, rule_id: str) -> bool:
        with self.store.transaction():
            book = self._book(team)
            kept = [rule for rule in book.rules if rule.id != rule_id]
            if len(kept) == len(book.rules):
                return False
            book.rules = kept
            self.store.put(BOOK, team.id, book, owner=team.id)
            return True

    def clear(self, team: Team) -> int:
        """Forget the team's own rules (the file's rules stay); how many there were."""
        with self.store.transaction():
            book = self._book(team)
            count = len(book.rules)
            book.rules = []
            self.store.put(BOOK, team.id, book, owner=team.id)
            return count

    def has_rules(self, team: Team) -> bool:
        """Whether a rule (the team's or the file's) could apply to the team's requests: without one, a request
        with no marker and no header has no scenario, and :meth:`resolve` would write nothing."""
        if self.file_rules:
            return True
        book: Book | None = self.store.get(BOOK, team.id)
        return book is not None and bool(book.rules)

    def resolve(self, team: Team, call: Call, chosen: Step | None = None) -> Step | None:
        """The step for this request: ``chosen`` (marker or header) if given, else the first armed rule's."""
        if not self.has_rules(team):
            return chosen  # the usual case, decided without a write transaction
        with self.store.transaction():
            book = self._book(team)
            from_file = self._file_rules(team, book)
            if not book.rules and not from_file:
                return chosen  # nothing to count: no record is written for teams without rules
            decided = chosen
            for rule in [*book.rules, *from_file]:
                if not rule.matches(call):
                    continue
                if decided is None:
                    decided = rule.take()
                else:
                    rule.seen += 1
            book.file_counts.update({rule.id: (rule.seen, rule.hits) for rule in from_file})
            self.store.put(BOOK, team.id, book, owner=team.id)
        return decided
