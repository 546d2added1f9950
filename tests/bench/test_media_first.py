"""bench/media_first.py: every download it times renders a distinct output, and its table reports what it measured.

No test here asserts how fast anything is: speed is what the benchmark measures, not what unit tests time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "media_first.py"


def test_media_first_reports_each_first_download_with_its_target(tmp_path: Path) -> None:
    out = tmp_path / "media.json"
    command = [sys.executable, str(SCRIPT), "--images", "2", "--videos", "1", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    results = json.loads(out.read_text())["downloads"]
    assert (results["image"]["count"], results["video"]["count"]) == (2, 1)
    assert (results["image"]["target_ms"], results["video"]["target_ms"]) == (20.0, 250.0)
    assert results["image"]["bytes_median"] > 1000
    assert results["video"]["bytes_median"] > 10_000
    for kind, label in (("image", "PNG 1024²"), ("video", "MP4 12 s 1080p")):
        row = next(line for line in done.stdout.splitlines() if line.startswith(f"| {label} |"))
        verdict = "PASS" if results[kind]["wall_ms_median"] <= results[kind]["target_ms"] else "FAIL"
        assert row.endswith(f"| {verdict} |")
    assert "very first download" in done.stdout
