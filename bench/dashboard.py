"""The dashboard's two budgets: it opens in < 1 s on a team with 10,000 generations, and an open idle page costs the
server < 5 % of a core. Runs ``aurous-mock serve`` as its own process (so its CPU time is its own), fills a team over
HTTP, and drives Debian's chromium with Playwright (the test extra)::

    .venv/bin/python bench/dashboard.py [--generations 10000] [--idle 20] [--json out.json]

Open time: from ``goto`` until the first page of 50 rows and the total are shown (median of 5). Idle CPU: user +
system time of the server process over ``--idle`` seconds with the page open, and the same without any page (the
server's own background task) for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--disable-sync", "--no-first-run", "--disable-quic"]
KEY = "al_live_bench_dashboard_10k"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill(base: str, count: int) -> None:
    with httpx.Client(base_url=base, headers={"X-Api-Key": KEY}, timeout=30) as client:
        client.patch("/_mock/team", json={"billing_mode": "exempt"}).raise_for_status()
        for i in range(count):
            client.post("/v1/images", json={"prompt": f"bulk {i}"}).raise_for_status()


def idle_share(pid: int, seconds: float) -> float:
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def measure(base: str, pid: int, count: int, idle: float) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    result: dict[str, Any] = {"generations": count, "idle_seconds": idle}
    result["idle_cpu_share_without_page"] = round(idle_share(pid, idle), 4)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        opens = []
        for _ in range(5):
            started = time.perf_counter()
            page.goto(f"{base}/_mock/ui#key={KEY}")
            expect(page.locator("#gen-total")).to_have_text(f"{count} generations", timeout=30_000)
            expect(page.locator("#generations tbody tr[data-status]")).to_have_count(min(count, 50), timeout=30_000)
            opens.append(time.perf_counter() - started)
            page.goto("about:blank")
        result["open_seconds_median"] = round(statistics.median(opens), 3)
        result["open_seconds_max"] = round(max(opens), 3)
        page.goto(f"{base}/_mock/ui#key={KEY}")
        expect(page.locator("#gen-total")).to_have_text(f"{count} generations", timeout=30_000)
        time.sleep(2)
        result["idle_cpu_share_with_page"] = round(idle_share(pid, idle), 4)
        browser.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "mockserver", "serve", "--clock", "virtual", "--port", str(port)]
    env = {**os.environ, "AUROUS_MOCK_RATE_LIMITS_ENABLED": "false"}  # filling the team is not what is measured
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        fill(base, options.generations)
        result = measure(base, server.pid, options.generations, options.idle)
    finally:
        server.terminate()
        server.wait(timeout=10)
    text = json.dumps(result, indent=2)
    if options.json:
        options.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
