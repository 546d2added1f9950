"""The outcome of a run (suites, findings, spending) and its Markdown, JSON and JUnit XML renderings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

__all__ = [
    "DIFFERENTIAL",
    "EXIT_CLEAN",
    "EXIT_DRIFT",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "CheckResult",
    "Finding",
    "OperationResult",
    "SuiteResult",
    "render_markdown",
    "write_report",
]

DIFFERENTIAL = "differential"  # the suite holding what two targets answered differently
# `aurous-mock check` exit codes (also in `check --help` and the README).
EXIT_CLEAN, EXIT_DRIFT, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3


@dataclass
class Finding:
    """One distinct violation: which operation broke which property, what was expected, and how to reproduce it."""

    operation: str
    failure: str  # named for the property it breaks (a Schemathesis Failure class, or the kit's own)
    title: str
    message: str
    status: int | None = None
    curl: str | None = None  # the request, API key redacted
    occurrences: int = 1
    suite: str = "conformance"
    expected: str | None = None
    actual: str | None = None
    replay: str | None = None  # the command that runs this single case again
    target: str | None = None  # the second target of a differential run, when the finding is about it alone
    against_curl: str | None = None  # a differential finding: the same request as sent to the second target


@dataclass
class OperationResult:
    """One operation (or workflow, or convention) of a suite: how many cases ran and what broke."""

    operation: str
    operation_id: str
    cases: int = 0
    failed: int = 0
    refused: int = 0  # billable cases the budget kept from being sent
    findings: list[Finding] = field(default_factory=list)


@dataclass
class SuiteResult:
    name: str
    operations: list[OperationResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why parts did not run (profile, budget, target)
    spent: float = 0.0
    target: str | None = None  # set for the second target's run of a suite in a differential run

    @property
    def label(self) -> str:
        return f"{self.name} [{self.target}]" if self.target else self.name

    @property
    def findings(self) -> list[Finding]:
        return [finding for operation in self.operations for finding in operation.findings]

    @property
    def cases(self) -> int:
        return sum(operation.cases for operation in self.operations)


@dataclass
class CheckResult:
    """What ``check`` found. ``exit_code`` is non-zero exactly when there is a finding (drift or violation)."""

    target: str
    profile: str
    max_credits: float | None
    spent: float = 0.0
    aborted: str | None = None
    suites: list[SuiteResult] = field(default_factory=list)
    against: str | None = None  # the second target of a differential run
    seed: int | None = None
    unreachable: str | None = None  # why no suite ran: the target did not answer, or not as an Aurous API

    @property
    def operations(self) -> list[OperationResult]:
        return [operation for suite in self.suites for operation in suite.operations]

    @property
    def findings(self) -> list[Finding]:
        return [finding for suite in self.suites for finding in suite.findings]

    @property
    def cases(self) -> int:
        return sum(suite.cases for suite in self.suites)

    @property
    def ok(self) -> bool:
        return not self.findings and self.aborted is None

    @property
    def exit_code(self) -> int:
        """0 clean, 1 drift (or an aborted run), 3 when the target is unreachable or no Aurous API at all."""
        if self.unreachable is not None:
            return EXIT_UNREACHABLE
        return EXIT_CLEAN if self.ok else EXIT_DRIFT

    def suite(self, name: str, target: str | None = None) -> SuiteResult:
        """A suite's result; ``target`` picks the second target's run of it in a differential run."""
        for suite in self.suites:
            if suite.name == name and suite.target == target:
                return suite
        raise KeyError(name)

    def summary(self) -> str:
        if self.unreachable is not None:
            return f"{self.target} [{self.profile}]: not checked: {self.unreachable}"
        verdict = "no drift" if self.ok else f"{len(self.findings)} finding(s)"
        cap = "unlimited" if self.max_credits is None else f"{self.max_credits:g}"
        versus = f" vs {self.against}" if self.against else ""
        lines = [
            f"{self.target}{versus} [{self.profile}]: {len(self.suites)} suites, {len(self.operations)} operations, "
            f"{self.cases} cases, {verdict}; credits spent {self.spent:g} (cap {cap})"
        ]
        for finding in self.findings:
            lines.append(f"  {_where(finding)} · {finding.failure} · {finding.operation}: {finding.title}")
            if finding.suite == DIFFERENTIAL:
                lines.append(f"      A {self.target}: {finding.expected}")
                lines.append(f"      B {self.against}: {finding.actual}")
            elif finding.expected is not None or finding.actual is not None:
                lines.append(f"      expected {finding.expected}, got {finding.actual}")
            else:
                lines.append(f"      {finding.message[:300]}")
            if finding.replay:
                lines.append(f"      replay: {finding.replay}")
        if self.aborted:
            lines.append(f"  aborted: {self.aborted}")
        return "\n".join(lines)

    def asdict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ok=self.ok, exit_code=self.exit_code, cases=self.cases)
        return data


def _where(finding: Finding) -> str:
    return f"{finding.suite} [{finding.target}]" if finding.target else finding.suite


def _cell(text: str | None) -> str:
    return "`" + (text or "—").replace("|", "\\|").replace("`", "'") + "`"


def _code(text: str, language: str = "") -> list[str]:
    fence = "````" if "```" in text else "```"
    return [f"{fence}{language}", text, fence]


def render_markdown(result: CheckResult) -> str:
    """A report readable in a CI summary: verdict, per-suite table (cases, findings, credits), then each finding."""
    cap = "unlimited" if result.max_credits is None else f"{result.max_credits:g}"
    verdict = "✅ no drift" if result.ok else f"❌ {len(result.findings)} finding(s)"
    if result.unreachable is not None:
        verdict = "⛔ target unreachable or not an Aurous API"
    versus = f" against `{result.against}`" if result.against else ""
    seeded = "" if result.seed is None else f", seed `{result.seed}`"
    lines = [
        f"# Aurous contract check: {verdict}",
        "",
        f"Target `{result.target}`{versus}, profile `{result.profile}`{seeded}; "
        f"credits spent **{result.spent:g}** (cap {cap}).",
        "",
        "| suite | operations | cases | findings | credits spent | skipped |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for suite in result.suites:
        skipped = "; ".join(suite.skipped).replace("|", "\\|") or "—"
        lines.append(
            f"| {suite.label} | {len(suite.operations)} | {suite.cases} | {len(suite.findings)} | {suite.spent:g} "
            f"| {skipped} |"
        )
    if result.aborted:
        lines += ["", f"**Aborted:** {result.aborted}"]
    if result.unreachable:
        lines += ["", f"**Not checked** (exit {EXIT_UNREACHABLE}): {result.unreachable}"]
    for number, finding in enumerate(result.findings, 1):
        lines += ["", f"## {number}. {_where(finding)} · `{finding.operation}` · {finding.failure}", ""]
        lines += _markdown_finding(result, finding)
    return "\n".join(lines) + "\n"


def _markdown_finding(result: CheckResult, finding: Finding) -> list[str]:
    status = f" (HTTP {finding.status})" if finding.status is not None else ""
    seen = f" — seen {finding.occurrences} times" if finding.occurrences > 1 else ""
    lines = [f"**{finding.title}**{status}{seen}", ""]
    if finding.suite == DIFFERENTIAL:  # side by side: what A answered, what B answered
        lines += [
            f"| | A `{result.target}` | B `{result.against}` |",
            "|---|---|---|",
            f"| {finding.failure} | {_cell(finding.expected)} | {_cell(finding.actual)} |",
            "",
        ]
    elif finding.expected is not None or finding.actual is not None:
        lines += [f"- expected: `{finding.expected}`", f"- actual: `{finding.actual}`", ""]
    lines += _code(finding.message)
    if finding.curl:
        lines += ["", "Request to A:" if finding.against_curl else "Request:", "", *_code(finding.curl, "sh")]
    if finding.against_curl:
        lines += ["", "Request to B:", "", *_code(finding.against_curl, "sh")]
    if finding.replay:
        lines += ["", "Replay this case:", "", *_code(finding.replay, "sh")]
    return lines


def _junit(result: CheckResult) -> ET.Element:
    root = ET.Element("testsuites", name=f"aurous-contracts {result.target}")
    for suite in result.suites:
        element = ET.SubElement(
            root,
            "testsuite",
            name=suite.label,
            tests=str(len(suite.operations)),
            failures=str(sum(1 for op in suite.operations if op.findings)),
            skipped="0",
        )
        for operation in suite.operations:
            case = ET.SubElement(
                element, "testcase", classname=f"{result.profile}.{suite.label}", name=operation.operation
            )
            for finding in operation.findings:
                failure = ET.SubElement(case, "failure", type=finding.failure, message=finding.title)
                detail = [finding.message]
                if finding.expected is not None or finding.actual is not None:
                    detail.append(f"expected: {finding.expected}\nactual: {finding.actual}")
                detail += [
                    finding.curl or "",
                    finding.against_curl or "",
                    f"replay: {finding.replay}" if finding.replay else "",
                ]
                failure.text = "\n".join(filter(None, detail))
        for reason in suite.skipped:
            skipped = ET.SubElement(element, "testcase", classname=f"{result.profile}.{suite.name}", name="skipped")
            ET.SubElement(skipped, "skipped", message=reason)
    if result.aborted:
        budget = ET.SubElement(root, "testsuite", name="budget", tests="1", failures="1")
        case = ET.SubElement(budget, "testcase", classname=result.profile, name="budget")
        ET.SubElement(case, "failure", type="BudgetExceeded", message=result.aborted)
    return root


def write_report(result: CheckResult, directory: str | Path) -> list[Path]:
    """Write ``report.md``, ``report.json`` and ``junit.xml`` into ``directory``; returns the paths written."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    markdown, json_path, junit_path = folder / "report.md", folder / "report.json", folder / "junit.xml"
    markdown.write_text(render_markdown(result), encoding="utf-8")
    json_path.write_text(json.dumps(result.asdict(), indent=2, default=str), encoding="utf-8")
    ET.ElementTree(_junit(result)).write(junit_path, encoding="utf-8", xml_declaration=True)
    return [markdown, json_path, junit_path]
