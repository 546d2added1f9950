"""What the pytest plugins cost a test run: four one-test pytest runs, interleaved, in a scratch project.

    python bench/plugin_cost.py [--rounds N] [--json PATH]

- ``off``: a plain test with both plugins disabled (``-p no:aurous_mock -p no:aurous_contracts``): the floor.
- ``loaded``: the same test with the plugins loaded, no fixture used. Issue 18: ≤ 100 ms more than ``off``.
- ``aurous_mock``: one test using the fixture, its request sent by the code under test's own client (here
  ``urllib``): the emulator is imported, started on a free port, given a team, asked once and stopped.
  Issue 18: ≤ 400 ms more than ``off``.
- ``aurous_mock.client``: the same through the fixture's ``httpx`` client, which imports httpx (and, with its
  command-line extras installed, click, rich and pygments).

Each run is a fresh ``python -m pytest`` process; wall time is what a developer waits, CPU time (user + system of
the process) is what the run costs and moves little when other processes share the cores. Medians of
``--rounds`` rounds, the runs of a round back to back (each round starting at the next run). Bytecode is compiled
first, as an installed package has it. The verdicts take the median over rounds of each run's wall time minus the
same round's ``off``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS_MS = {"loaded": 100.0, "aurous_mock": 400.0, "aurous_mock.client": 400.0}
# The code under test brings its own HTTP client; here the standard library's, whose import costs nothing extra.
OWN_CLIENT = """import urllib.request


def test_balance(aurous_mock):
    request = urllib.request.Request(aurous_mock.base_url + "/v1/balance", headers={"X-Api-Key": aurous_mock.api_key})
    with urllib.request.urlopen(request) as reply:
        assert reply.status == 200
"""
TESTS = {
    "test_plain.py": "def test_plain():\n    assert sum([1, 1]) == 2\n",
    "test_mock.py": OWN_CLIENT,
    "test_mock_client.py": (
        "def test_balance(aurous_mock):\n    assert aurous_mock.client.get('/v1/balance').status_code == 200\n"
    ),
}
OFF = ("-p", "no:aurous_mock", "-p", "no:aurous_contracts")
RUNS: dict[str, tuple[str, ...]] = {
    "off": (*OFF, "test_plain.py"),
    "loaded": ("test_plain.py",),
    "aurous_mock": ("test_mock.py",),
    "aurous_mock.client": ("test_mock_client.py",),
}


def _run(project: Path, args: tuple[str, ...]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one pytest process."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    output = process.stdout.read().decode() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{output}")
    return wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def measure(rounds: int) -> dict[str, Any]:
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "mockserver"), str(ROOT / "contracts")], check=True
    )
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in RUNS}
    with tempfile.TemporaryDirectory(prefix="aurous-plugin-cost-") as scratch:
        project = Path(scratch)
        (project / "pytest.ini").write_text("[pytest]\n")  # the scratch project's own rootdir, no ini of ours
        for name, text in TESTS.items():
            (project / name).write_text(text)
        for args in RUNS.values():  # warm-up: the page cache, and pytest's own first run
            _run(project, args)
        names = list(RUNS)
        for round_ in range(rounds):  # each round starts at the next run, so no run is always first
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                samples[name].append(_run(project, RUNS[name]))
    results: dict[str, Any] = {}
    for name, runs in samples.items():
        walls, cpus = [wall for wall, _ in runs], [cpu for _, cpu in runs]
        results[name] = {
            "wall_ms_median": statistics.median(walls),
            "wall_ms_min": min(walls),
            "cpu_ms_median": statistics.median(cpus),
            "rounds": rounds,
        }
    for name, target in TARGETS_MS.items():
        results[name]["target_extra_ms"] = target
        # Paired: each run against the same round's `off`, seconds apart, so a slow minute of a shared machine
        # weighs on both sides of a difference instead of on one median.
        for index, key in ((0, "wall_ms_median"), (1, "cpu_ms_median")):
            extra = [run[index] - off[index] for run, off in zip(samples[name], samples["off"], strict=True)]
            results[name][f"extra_{key}"] = statistics.median(extra)
    return results


def _report(results: dict[str, Any]) -> str:
    lines = [
        "| pytest run | wall ms median (min) | CPU ms median | over `off` (median of rounds): wall / CPU | target "
        "| verdict |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, row in results.items():
        extra, target, verdict = "", "", ""
        if name in TARGETS_MS:
            extra = f"{row['extra_wall_ms_median']:+.0f} / {row['extra_cpu_ms_median']:+.0f}"
            target = f"≤ {row['target_extra_ms']:.0f} ms"
            verdict = "PASS" if row["extra_wall_ms_median"] <= row["target_extra_ms"] else "FAIL"
        lines.append(
            f"| {name} | {row['wall_ms_median']:.0f} ({row['wall_ms_min']:.0f}) | {row['cpu_ms_median']:.0f} | "
            f"{extra} | {target} | {verdict} |"
        )
    lines.append(
        f"\nLoad average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall time on a busy machine"
        " overstates the wait (the targets are for a quiet one); CPU time is what the run costs."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the four runs")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    results = measure(args.rounds)
    print(_report(results))  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
