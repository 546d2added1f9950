"""The outcome of a run (findings, per-operation counts, spending) and its JSON / JUnit XML renderings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

__all__ = ["CheckResult", "Finding", "OperationResult", "write_report"]


@dataclass
class Finding:
    """One distinct violation: which operation broke which property, and how to reproduce it."""

    operation: str
    failure: str  # the Failure class, named for the property it breaks
    title: str
    message: str
    status: int | None = None
    curl: str | None = None
    occurrences: int = 1


@dataclass
class OperationResult:
    operation: str
    operation_id: str
    cases: int = 0
    failed: int = 0
    refused: int = 0  # billable cases the budget kept from being sent
    findings: list[Finding] = field(default_factory=list)


@dataclass
class CheckResult:
    """What ``check`` found. ``exit_code`` is non-zero exactly when there is a finding (drift or violation)."""

    target: str
    profile: str
    max_credits: float | None
    spent: float = 0.0
    aborted: str | None = None
    operations: list[OperationResult] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [finding for operation in self.operations for finding in operation.findings]

    @property
    def cases(self) -> int:
        return sum(operation.cases for operation in self.operations)

    @property
    def ok(self) -> bool:
        return not self.findings and self.aborted is None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        verdict = "no drift" if self.ok else f"{len(self.findings)} finding(s)"
        cap = "unlimited" if self.max_credits is None else f"{self.max_credits:g}"
        lines = [
            f"{self.target} [{self.profile}]: {len(self.operations)} operations, {self.cases} cases, {verdict}; "
            f"credits spent {self.spent:g} (cap {cap})"
        ]
        lines += [f"  {f.failure} · {f.operation}: {f.title}: {f.message}" for f in self.findings]
        if self.aborted:
            lines.append(f"  aborted: {self.aborted}")
        return "\n".join(lines)

    def asdict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ok=self.ok, exit_code=self.exit_code, cases=self.cases)
        return data


def _junit(result: CheckResult) -> ET.Element:
    suite = ET.Element(
        "testsuite",
        name=f"aurous-contracts {result.target}",
        tests=str(len(result.operations)),
        failures=str(sum(1 for op in result.operations if op.findings)),
    )
    for operation in result.operations:
        case = ET.SubElement(suite, "testcase", classname=result.profile, name=operation.operation)
        for finding in operation.findings:
            failure = ET.SubElement(case, "failure", type=finding.failure, message=finding.title)
            failure.text = "\n".join(filter(None, [finding.message, finding.curl]))
    if result.aborted:
        aborted = ET.SubElement(suite, "testcase", classname=result.profile, name="budget")
        ET.SubElement(aborted, "failure", type="BudgetExceeded", message=result.aborted)
    return suite


def write_report(result: CheckResult, directory: str | Path) -> list[Path]:
    """Write ``report.json`` and ``junit.xml`` into ``directory``; returns the paths written."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, junit_path = folder / "report.json", folder / "junit.xml"
    json_path.write_text(json.dumps(result.asdict(), indent=2, default=str), encoding="utf-8")
    ET.ElementTree(_junit(result)).write(junit_path, encoding="utf-8", xml_declaration=True)
    return [json_path, junit_path]
