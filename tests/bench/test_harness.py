"""The benchmark harness (bench/run.py): its report is built from what it measured, in the shape it promises.

No test here asserts how fast anything is: speed is what the benchmark measures, not what unit tests time.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
TARGET_IDS = {
    "poll_vs_starlette",
    "poll_vs_prism",
    "mix_vs_starlette",
    "mix_vs_prism",
    "poll_p99",
    "mix_p99",
    "balance_p99",
    "cold_start",
    "memory",
    "clock_advance",
    "video_cached_encodes",
}


@pytest.fixture(scope="module")
def report() -> ModuleType:
    """bench/report.py, loaded from its file (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("aurous_bench_report", BENCH / "report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, *options: str) -> tuple[dict, str]:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--json", str(out), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text(encoding="utf-8")), done.stdout


def _run_entry(rps: list[float], p99: list[float]) -> dict:
    runs = [
        {"rps": r, "p50_ms": 1.0, "p99_ms": p, "requests": 100, "non2xx": 0, "socket_errors": 0}
        for r, p in zip(rps, p99, strict=True)
    ]
    return {"runs": runs}


def test_ratios_are_the_emulators_median_over_each_baselines(report: ModuleType) -> None:
    http = {
        "poll": {
            "emulator": _run_entry([3000, 2000, 2600], [9, 12, 11]),
            "starlette": _run_entry([8000, 7000, 9000], [5, 5, 5]),
            "prism": _run_entry([300, 350, 250], [900, 800, 700]),
        }
    }
    for by_server in http.values():
        for entry in by_server.values():
            entry["median"] = report.median_run(entry["runs"])
    found = report.ratios(http)["poll"]
    assert found["vs_starlette"] == pytest.approx(2600 / 8000)
    assert found["vs_prism"] == pytest.approx(2600 / 300)
    assert found["vs_before"] is None  # no --compare-ref
    assert http["poll"]["emulator"]["median"]["p99_ms"] == statistics.median([9, 12, 11])


def test_targets_judge_the_measured_values(report: ModuleType) -> None:
    results = {
        "meta": {"connections": 32},
        "ratios": {"poll": {"vs_starlette": 0.71, "vs_prism": 2.9}, "mix": {"vs_starlette": 0.5, "vs_prism": 4.0}},
        "http": {"poll": {"emulator": {"median": {"p99_ms": 9.9}}}},
        "cold_start": {"emulator": {"median_s": 1.2}},
        "inprocess": {
            "memory": {"generations": 100_000, "rss_mb": 250.0, "journal_entries": 1000, "journal_bound": 1000},
            "clock_advance": {"generations": 10_000, "seconds": 0.4},
            "video_cache": {"duration": 12, "resolution": "1080p", "encodes_second": 0},
        },
    }
    verdicts = {row["id"]: row["verdict"] for row in report.targets(results)}
    assert set(verdicts) == TARGET_IDS
    assert verdicts["poll_vs_starlette"] == "PASS"
    assert verdicts["poll_vs_prism"] == "FAIL"
    assert verdicts["mix_vs_starlette"] == "FAIL"
    assert verdicts["poll_p99"] == "PASS"
    assert verdicts["mix_p99"] == verdicts["balance_p99"] == "SKIP"  # not measured
    assert verdicts["cold_start"] == "FAIL"
    assert verdicts["memory"] == verdicts["clock_advance"] == verdicts["video_cached_encodes"] == "PASS"


def test_an_unbounded_journal_fails_the_memory_target(report: ModuleType) -> None:
    memory = {"generations": 100_000, "rss_mb": 100.0, "journal_entries": 1001, "journal_bound": 1000}
    rows = {row["id"]: row for row in report.targets({"inprocess": {"memory": memory}})}
    assert rows["memory"]["verdict"] == "FAIL"
    assert "bound" in rows["memory"]["note"]


@pytest.mark.slow
def test_quick_in_process_run_reports_every_step_and_target(tmp_path: Path) -> None:
    results, table = _run(tmp_path, "--no-http")
    assert set(results["inprocess"]) == {"per_request", "clock_advance", "memory", "video_cache"}
    assert results["inprocess"]["memory"]["journal_entries"] <= results["inprocess"]["memory"]["journal_bound"]
    assert results["inprocess"]["video_cache"]["encodes_first"] == 1
    assert {row["id"] for row in results["targets"]} == TARGET_IDS
    verdicts = {row["id"]: row["verdict"] for row in results["targets"]}
    assert verdicts["poll_vs_starlette"] == "SKIP"  # no HTTP in this run
    assert verdicts["memory"].endswith("*")  # a quick run is smaller than the target's 100,000 generations
    assert "| Target | Measured | Verdict | Note |" in table
    assert "RSS before / after the generations" in table


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_quick_http_run_computes_ratios_from_its_own_runs(tmp_path: Path) -> None:
    results, table = _run(tmp_path, "--no-prism", "--duration", "1")
    http = results["http"]
    assert {"poll", "mix", "balance", "image_first", "image_cached", "video_first", "video_cached"} <= set(http)
    for workload in ("poll", "mix", "balance"):
        emulator, starlette = http[workload]["emulator"], http[workload]["starlette"]
        assert emulator["median"]["rps"] == statistics.median(run["rps"] for run in emulator["runs"])
        expected = emulator["median"]["rps"] / starlette["median"]["rps"]
        assert results["ratios"][workload]["vs_starlette"] == pytest.approx(expected)
        assert emulator["median"]["failed"] == 0  # no 429s: the bench raises the buckets
    assert results["cold_start"]["emulator"]["median_s"] > 0
    assert "| (a) poll `GET /v1/images/{id}` |" in table
