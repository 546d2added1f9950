"""The benchmark harness (bench/run.py): its report is built from what it measured, in the shape it promises.

No test here asserts how fast anything is: speed is what the benchmark measures, not what unit tests time.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from starlette.testclient import TestClient

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
    "redis_poll",
    "redis_create",
}


def _load(name: str) -> ModuleType:
    """A module of bench/, loaded from its file (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"aurous_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report() -> ModuleType:
    return _load("report")


@pytest.fixture(scope="module")
def baseline_app() -> ModuleType:
    return _load("baseline_app")


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


def _run_entry(rps: list[float], p99: list[float], cpu: list[float] | None = None) -> dict:
    runs = [
        {"rps": r, "p50_ms": 1.0, "p99_ms": p, "requests": 100, "non2xx": 0, "socket_errors": 0}
        for r, p in zip(rps, p99, strict=True)
    ]
    for run, cpu_us in zip(runs, cpu or [], strict=False):
        run["server_cpu_us"] = cpu_us
    return {"runs": runs}


def _with_medians(report: ModuleType, http: dict) -> dict:
    for by_server in http.values():
        for entry in by_server.values():
            entry["median"] = report.median_run(entry["runs"])
    return http


def test_ratios_are_the_emulators_median_over_each_baselines(report: ModuleType) -> None:
    http = {
        "poll": {
            "emulator": _run_entry([3000, 2000, 2600], [9, 12, 11]),
            "starlette": _run_entry([8000, 7000, 9000], [5, 5, 5]),
            "prism": _run_entry([300, 350, 250], [900, 800, 700]),
            "asgi": _run_entry([16000, 20000, 18000], [2, 2, 2]),
        }
    }
    found = report.ratios(_with_medians(report, http))["poll"]
    assert found["vs_starlette"] == pytest.approx(2600 / 8000)
    assert found["vs_prism"] == pytest.approx(2600 / 300)
    assert found["vs_floor"] == pytest.approx(2600 / 18000)
    assert found["starlette_vs_floor"] == pytest.approx(8000 / 18000)
    assert found["vs_before"] is None  # no --compare-ref
    assert http["poll"]["emulator"]["median"]["p99_ms"] == statistics.median([9, 12, 11])


def _floor_results(report: ModuleType, *, before: bool = False) -> dict:
    """Made-up poll and balance runs of every server but Prism; the downloads without the floor."""
    http = {
        "poll": {
            "emulator": _run_entry([4000, 3800, 4200], [9, 9, 9], [210, 230, 220]),
            "starlette": _run_entry([10000, 9000, 11000], [5, 5, 5], [70, 74, 72]),
            "asgi": _run_entry([20000, 19000, 21000], [2, 2, 2], [30, 34, 32]),
        },
        "balance": {
            "emulator": _run_entry([5000], [8], [180]),
            "starlette": _run_entry([12000], [4], [66]),
            "asgi": _run_entry([24000], [2], [29]),
        },
        "image_cached": {"emulator": _run_entry([850], [90], [1150]), "starlette": _run_entry([1000], [80], [900])},
    }
    if before:
        http["poll"]["before"] = _run_entry([3000], [12], [290])
    http = _with_medians(report, http)
    results = {"meta": {"connections": 32, "compare_ref": "abc1234" if before else None}, "http": http}
    results["ratios"] = report.ratios(http)
    return results


def _table_rows(table: str) -> dict[str, list[str]]:
    """A Markdown table as {first cell: the other cells}, the header row under "header"."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]
    return {"header" if i == 0 else row[0]: row[1:] for i, row in enumerate(rows) if i != 1}


def test_the_results_table_shows_the_floor_and_the_emulators_ratio_to_it(report: ModuleType) -> None:
    rows = _table_rows(report.http_table(_floor_results(report)))
    header = rows["header"]
    poll = dict(zip(header, rows[report.WORKLOADS["poll"]], strict=True))
    assert poll["uvicorn floor req/s"] == "20,000"
    assert poll["vs floor"] == "0.20 ×"  # 4,000 / 20,000
    assert poll["vs Starlette"] == "0.40 ×"  # unchanged beside it
    cached = dict(zip(header, rows[report.WORKLOADS["image_cached"]], strict=True))
    assert cached["uvicorn floor req/s"] == cached["vs floor"] == "—"  # the floor serves no downloads


def test_the_floor_table_gives_each_servers_cpu_per_request_and_starlette_over_the_floor(report: ModuleType) -> None:
    results = _floor_results(report)
    table = report.floor_table(results)
    rows = _table_rows(table)
    assert rows["header"] == [
        "Emulator CPU µs/req",
        "Starlette CPU µs/req",
        "uvicorn floor CPU µs/req",
        "Starlette ÷ floor req/s",
    ]
    assert rows[report.WORKLOADS["poll"]] == ["220", "72", "32", "0.50 ×"]  # medians; 10,000 / 20,000
    assert rows[report.WORKLOADS["balance"]] == ["180", "66", "29", "0.50 ×"]  # 12,000 / 24,000
    assert report.WORKLOADS["image_cached"] not in rows  # the floor did not run it
    assert table in report.markdown(results)


def test_the_floor_table_names_the_compared_ref(report: ModuleType) -> None:
    rows = _table_rows(report.floor_table(_floor_results(report, before=True)))
    assert rows["header"][1] == "abc1234 CPU µs/req"
    assert rows[report.WORKLOADS["poll"]][1] == "290"
    assert rows[report.WORKLOADS["balance"]][1] == "—"


def test_without_the_floor_there_are_no_floor_columns_or_table(report: ModuleType) -> None:
    results = _floor_results(report)
    for by_server in results["http"].values():
        by_server.pop("asgi", None)
    results["ratios"] = report.ratios(results["http"])
    assert report.floor_table(results) == ""
    header = _table_rows(report.http_table(results))["header"]
    assert "uvicorn floor req/s" not in header
    assert "vs floor" not in header
    assert "Starlette ÷ floor" not in report.markdown(results)
    assert results["ratios"]["poll"]["vs_floor"] is None


def test_the_floor_answers_like_the_starlette_baseline(baseline_app: ModuleType) -> None:
    requests = [
        ("GET", "/v1/images/img_01JZ0000000000000000000000"),
        ("POST", "/v1/images"),
        ("GET", "/v1/balance"),
        ("GET", "/v1/nothing"),
        ("GET", "/v1/images/img_1/more"),
    ]
    with TestClient(baseline_app.app) as starlette, TestClient(baseline_app.floor) as floor:  # lifespan too
        for method, path in requests:
            body = b'{"prompt": "a lighthouse"}' if method == "POST" else None
            expected, got = starlette.request(method, path, content=body), floor.request(method, path, content=body)
            assert (got.status_code, got.content) == (expected.status_code, expected.content), path
            assert got.headers["content-type"] == expected.headers["content-type"], path
            assert got.headers["content-length"] == str(len(got.content)), path


def test_targets_judge_the_measured_values(report: ModuleType) -> None:
    results = {
        "meta": {"connections": 32},
        "ratios": {"poll": {"vs_starlette": 0.71, "vs_prism": 2.9}, "mix": {"vs_starlette": 0.5, "vs_prism": 4.0}},
        "http": {"poll": {"emulator": {"median": {"p99_ms": 9.9}}, "starlette": {"median": {"p99_ms": 3.46}}}},
        "cold_start": {"emulator": {"median_s": 1.2}},
        "inprocess": {
            "memory": {"generations": 100_000, "rss_mb": 250.0, "journal_entries": 1000, "journal_bound": 1000},
            "clock_advance": {"generations": 10_000, "seconds": 0.4},
            "video_cache": {"duration": 12, "resolution": "1080p", "encodes_second": 0},
        },
    }
    rows = {row["id"]: row for row in report.targets(results)}
    verdicts = {name: row["verdict"] for name, row in rows.items()}
    assert rows["poll_p99"]["note"] == "same rounds, bare Starlette: 3.5 ms"  # the machine's tail, beside ours
    assert set(verdicts) == TARGET_IDS
    assert verdicts["poll_vs_starlette"] == verdicts["mix_vs_starlette"] == "retired"  # shown, not judged
    assert verdicts["poll_vs_prism"] == "FAIL"
    assert verdicts["poll_p99"] == "PASS"
    assert verdicts["mix_p99"] == verdicts["balance_p99"] == "SKIP"  # not measured
    assert verdicts["cold_start"] == "FAIL"
    assert verdicts["memory"] == verdicts["clock_advance"] == verdicts["video_cached_encodes"] == "PASS"
    assert verdicts["redis_poll"] == verdicts["redis_create"] == "SKIP"  # the Redis step did not run


def _redis_results(report: ModuleType, poll: tuple[float, float], create: tuple[float, float]) -> dict:
    """The Redis step's results: (memory, redis) requests/s per workload, as medians of two runs each."""
    found: dict = {}
    for workload, (memory, redis) in (("poll", poll), ("create", create)):
        for server, rps in ((report.REDIS_MEMORY, memory), (report.REDIS_ONE, redis), (report.REDIS_TWO, redis)):
            entry = _run_entry([rps * 0.9, rps * 1.1], [5.0, 5.0], [200.0, 300.0])
            for run in entry["runs"]:
                run["redis_cpu_us"] = 40.0
            entry["median"] = report.median_run(entry["runs"])
            found.setdefault(workload, {})[server] = entry
    return {"redis": found}


def test_redis_targets_are_redis_over_memory_throughput_of_the_same_run(report: ModuleType) -> None:
    rows = {row["id"]: row for row in report.targets(_redis_results(report, (1000, 600), (400, 80)))}
    assert rows["redis_poll"]["value"] == pytest.approx(0.6)
    assert rows["redis_poll"]["verdict"] == "PASS"  # ≥ 0.50
    assert rows["redis_create"]["value"] == pytest.approx(0.2)
    assert rows["redis_create"]["verdict"] == "FAIL"  # < 0.25
    assert report.gate(list(rows.values())) == ["redis_create"]


def test_redis_targets_pair_the_runs_of_each_round(report: ModuleType) -> None:
    def entry(rps: list[float]) -> dict:
        found = _run_entry(rps, [5.0] * len(rps))
        found["median"] = report.median_run(found["runs"])
        return found

    # A burst of load slowed round 2 of both servers: each round's ratio is 0.6, the medians' ratio is not.
    memory, redis = entry([1000.0, 400.0, 1100.0]), entry([600.0, 240.0, 660.0])
    results = {"redis": {"poll": {report.REDIS_MEMORY: memory, report.REDIS_ONE: redis}}}
    row = next(row for row in report.targets(results) if row["id"] == "redis_poll")
    assert row["value"] == pytest.approx(0.6)
    assert "ratio of the medians 0.600" in row["note"]
    redis["runs"][0]["rps"] = 300.0  # round 1 now 0.3: the median of (0.3, 0.6, 0.6) is still 0.6
    row = next(row for row in report.targets(results) if row["id"] == "redis_poll")
    assert row["value"] == pytest.approx(0.6)


def test_the_redis_table_gives_each_servers_rate_and_the_cpu_of_workers_and_redis(report: ModuleType) -> None:
    table = report.redis_table(_redis_results(report, (1000, 600), (400, 120)))
    lines = [line for line in table.splitlines() if line.startswith("| (")]
    header = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
    rows = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True)) for line in lines]
    assert len(rows) == 6  # two workloads × (memory, redis, redis with two workers)
    one = next(row for row in rows if row["Server"] == report.REDIS_ONE and "poll" in row["Workload"])
    assert one["req/s"] == "600"
    assert one["vs memory"] == "0.60 ×"
    assert (one["workers CPU µs/req"], one["redis-server CPU µs/req"], one["total CPU µs/req"]) == ("250", "40", "290")
    assert report.redis_table({}) == ""


def test_gate_fails_on_a_measured_regression_only(report: ModuleType) -> None:
    rows = [
        {"id": "cold_start", "verdict": "PASS"},
        {"id": "memory", "verdict": "FAIL*"},  # a quick run's failure is still a failure
        {"id": "poll_vs_starlette", "verdict": "FAIL"},  # retired: never gated
        {"id": "mix_p99", "verdict": "SKIP"},  # not measured: the run says so, the gate does not fail
    ]
    assert report.gate(rows) == ["memory"]


def test_strict_exits_non_zero_on_a_regression(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run = _load("run")
    inprocess = {
        "memory": {"generations": 100_000, "rss_before_mb": 40.0, "rss_mb": 250.0},
        "clock_advance": {"generations": 10_000, "seconds": 0.4, "cpu_seconds": 0.4},
        "video_cache": {"duration": 12, "resolution": "1080p", "encodes_first": 1, "encodes_second": 0},
    }
    inprocess["memory"] |= {"journal_entries": 10, "journal_bound": 1000}
    inprocess["video_cache"] |= {"first_s": 1.0, "second_s": 0.001}
    monkeypatch.setattr(run, "_inprocess_steps", lambda plan, only=(), source=None: inprocess)
    assert run.main(["--no-http", "--strict"]) == 0
    inprocess["clock_advance"]["seconds"] = 1.5  # settling 10,000 generations got slower than 1 s
    assert run.main(["--no-http"]) == 0  # without --strict the run only reports
    assert run.main(["--no-http", "--strict"]) == 1
    assert "| 10,000 generations to terminal by one clock advance < 1 s | 1.500 s | FAIL |" in capsys.readouterr().out


def test_an_unbounded_journal_fails_the_memory_target(report: ModuleType) -> None:
    memory = {"generations": 100_000, "rss_mb": 100.0, "journal_entries": 1001, "journal_bound": 1000}
    rows = {row["id"]: row for row in report.targets({"inprocess": {"memory": memory}})}
    assert rows["memory"]["verdict"] == "FAIL"
    assert "bound" in rows["memory"]["note"]


def test_the_instructions_table_gives_each_count_and_its_change_against_the_ref(report: ModuleType) -> None:
    counted = {"emulator": {"poll": 300_000.0, "create": 700_000.0}, "before": {"poll": 400_000.0, "create": 0.0}}
    table = report.instructions_table({"instructions": counted, "meta": {"compare_ref": "abc123"}})
    assert "| poll | 300,000 | 400,000 | -25.0% |" in table
    assert "| create | 700,000 |\n" in table + "\n"  # nothing counted before: no change shown
    alone = report.instructions_table({"instructions": {"emulator": {"balance": 1234.4}}, "meta": {}})
    assert alone.splitlines()[-1] == "| balance | 1,234 |"
    assert "abc123" not in alone
    assert "instructions per request" not in report.markdown({"meta": {}, "http": {}}).lower()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("callgrind_control") is None, reason="valgrind is not installed")
def test_an_instruction_count_is_the_same_on_every_run() -> None:
    """What makes the count worth having on a noisy machine: the same requests count the same, round after round
    (and the warm-up, counted by no round, is not in them)."""
    instructions = _load("instructions")
    first, second = instructions.rounds("poll", 100, 2)
    assert first > 50_000  # a whole request: parsing, the app, the answer
    assert abs(first - second) / first < 0.02


@pytest.mark.slow
def test_quick_in_process_run_reports_every_step_and_target(tmp_path: Path) -> None:
    results, table = _run(tmp_path, "--no-http")
    assert set(results["inprocess"]) == {"per_request", "clock_advance", "memory", "video_cache"}
    assert results["inprocess"]["memory"]["journal_entries"] <= results["inprocess"]["memory"]["journal_bound"]
    assert results["inprocess"]["video_cache"]["encodes_first"] == 1
    assert {row["id"] for row in results["targets"]} == TARGET_IDS
    verdicts = {row["id"]: row["verdict"] for row in results["targets"]}
    assert verdicts["poll_p99"] == verdicts["redis_poll"] == "SKIP"  # no HTTP in this run
    assert verdicts["memory"].endswith("*")  # a quick run is smaller than the target's 100,000 generations
    assert "| Target | Measured | Verdict | Note |" in table
    assert "RSS before / after the generations" in table


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_quick_http_run_computes_ratios_from_its_own_runs(tmp_path: Path) -> None:
    results, table = _run(tmp_path, "--no-prism", "--no-redis", "--duration", "1")  # Redis: its own test below
    http = results["http"]
    assert {"poll", "mix", "balance", "image_first", "image_cached", "video_first", "video_cached"} <= set(http)
    for workload in ("poll", "mix", "balance"):
        emulator, starlette, floor = (http[workload][server] for server in ("emulator", "starlette", "asgi"))
        assert emulator["median"]["rps"] == statistics.median(run["rps"] for run in emulator["runs"])
        expected = emulator["median"]["rps"] / starlette["median"]["rps"]
        assert results["ratios"][workload]["vs_starlette"] == pytest.approx(expected)
        assert results["ratios"][workload]["vs_floor"] == pytest.approx(
            emulator["median"]["rps"] / floor["median"]["rps"]
        )
        assert results["ratios"][workload]["starlette_vs_floor"] == pytest.approx(
            starlette["median"]["rps"] / floor["median"]["rps"]
        )
        for entry in (emulator, starlette, floor):
            assert entry["median"]["failed"] == 0  # no 429s (the bench raises the buckets), no 404s from the floor
            assert entry["median"]["server_cpu_us"] > 0
    assert "asgi" not in http["image_cached"]  # the floor serves the API loads only
    assert results["cold_start"]["emulator"]["median_s"] > 0
    assert "| (a) poll `GET /v1/images/{id}` |" in table
    assert "| Workload | Emulator CPU µs/req | Starlette CPU µs/req | uvicorn floor CPU µs/req |" in table


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_quick_redis_run_measures_each_store_and_judges_the_ratio(tmp_path: Path) -> None:
    results, table = _run(tmp_path, "--only-redis", "--duration", "1")
    redis = results["redis"]
    for workload in ("poll", "create"):
        assert set(redis[workload]) == {"memory, 1 worker", "redis, 1 worker", "redis, 2 workers"}
        for entry in redis[workload].values():
            assert entry["median"]["failed"] == 0
            assert entry["median"]["server_cpu_us"] > 0
        rows = {row["id"]: row for row in results["targets"]}
        memory, one = (redis[workload][server]["median"]["rps"] for server in ("memory, 1 worker", "redis, 1 worker"))
        assert rows[f"redis_{workload}"]["value"] == pytest.approx(one / memory)
    assert redis["create"]["redis, 1 worker"]["median"]["redis_cpu_us"] > 0  # a create commits to Redis
    assert "| Workload | Server | req/s | vs memory |" in table


def _llm() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aurous_bench_llm", BENCH / "llm.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_llm_bench_streams_exactly_the_1000_tokens_it_reports() -> None:
    """The figure is about a 1,000-token stream: the request it times must produce one (the run asserts it)."""
    medians = asyncio.run(_llm().inprocess_runs(1))
    assert set(medians) == {"stream", "json"}
    assert all(value > 0 for value in medians.values())
