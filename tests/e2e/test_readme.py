"""The README's shell and Python examples run against a real ``aurous-mock serve``, so they cannot go stale.

The contract, for anyone adding a README section (also stated above the README's "First requests"):

- Every fenced block tagged ``sh`` (or ``bash``, ``shell``) or ``python`` is executed, in README order; other
  languages (``yaml``, ``json``, ``markdown`` …) are not. A block inside a four-backtick block is not a block.
- A block opts out with an HTML comment on the line right before its fence: ``<!-- no-run: <reason> -->``
  (installing, Docker, a live API key, a server on a fixed port). Keep them rare; the reason is required.
- Shell blocks run in ``bash -euo pipefail`` in a scratch directory, with ``AUROUS_URL`` pointing at the emulator
  and ``aurous-mock`` / ``python`` on ``PATH``; a line ``export AUROUS_URL=…`` is left out (the test sets it).
  Each block runs on its own, with ``KEY`` set as "First requests" sets it (a user's terminal has it by then);
  anything else a block needs it sets itself. A block must exit 0.
- A Python block that defines ``test_`` functions is run by pytest with ``--aurous-url $AUROUS_URL`` (the
  ``aurous_mock`` fixtures); any other Python block runs as a script with ``AUROUS_URL`` in its environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli_process

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
RUN = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python"}
NO_RUN = re.compile(r"^<!-- no-run: (\S.*?) -->$")
FENCE = re.compile(r"^(`{3,})([\w-]*)\s*$")
URL_LINE = re.compile(r"^\s*(export\s+)?AUROUS_URL=\S*.*$")
BANNER = re.compile(r"^aurous-mock \S+ serving on (http://127\.0\.0\.1:\d+)$")
BLOCK_TIMEOUT = 180


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    no_run: str | None  # the opt-out's reason

    @property
    def name(self) -> str:
        return f"README.md:{self.line}:{self.language}"


def blocks(text: str) -> list[Block]:
    """Every fenced block with its language and opt-out; blocks nested in a longer fence are part of it."""
    found: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, language = opening.groups()
        end = next((at for at in range(index + 1, len(lines)) if lines[at].strip() == fence), len(lines))
        before = next((lines[at] for at in range(index - 1, -1, -1) if lines[at].strip()), "")
        marker = NO_RUN.match(before.strip())
        code = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Block(index + 1, language, code, marker.group(1) if marker else None))
        index = end + 1
    return found


def runnable() -> list[Block]:
    return [block for block in blocks(README.read_text(encoding="utf-8")) if block.language in RUN]


@pytest.fixture(scope="module")
def aurous_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("readme-server")
    with cli_process(directory, "serve", "--port", "0", "--clock", "virtual", "--log-level", "warning") as cli:
        yield cli.first_line(BANNER).group(1)


def _environment(aurous_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUROUS_")}
    scripts = str(Path(sys.executable).parent)  # the venv's aurous-mock, python, pytest
    env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")])
    env["AUROUS_URL"] = aurous_url
    env["KEY"] = "al_live_test"  # as "First requests" sets it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def _command(block: Block, directory: Path, aurous_url: str) -> list[str]:
    if RUN[block.language] == "sh":
        script = "\n".join(line for line in block.code.splitlines() if not URL_LINE.match(line))
        return ["bash", "-euo", "pipefail", "-c", script]
    source = directory / "test_readme_block.py"
    source.write_text(block.code, encoding="utf-8")
    if re.search(r"^def test_", block.code, re.MULTILINE):
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--aurous-url", aurous_url, source.name]
    return [sys.executable, source.name]


def test_readme_blocks_are_found() -> None:
    found = runnable()
    assert len([block for block in found if block.no_run is None]) >= 6
    assert len([block for block in found if block.no_run is not None]) <= 8  # opt-outs stay rare
    # The first two commands install (and are kept exactly two): they are the only ones before the rule.
    head = README.read_text(encoding="utf-8").split("\n---\n", 1)[0]
    installs = ["installs and starts the emulator", "installs and runs the tests"]
    assert [block.no_run for block in blocks(head)] == installs


def test_readme_uses_the_base_url_variable() -> None:
    for block in runnable():
        if block.no_run is None:
            assert ":8080" not in block.code.replace("AUROUS_URL=http://127.0.0.1:8080", ""), block.name


@pytest.mark.parametrize("block", [pytest.param(block, id=block.name) for block in runnable()])
def test_readme_example_runs(block: Block, aurous_url: str, tmp_path: Path) -> None:
    if block.no_run is not None:
        pytest.skip(f"<!-- no-run: {block.no_run} -->")
    if re.search(r"\bjq\b", block.code) and shutil.which("jq") is None:
        pytest.skip("jq is not installed (apt-get install jq)")
    done = subprocess.run(
        _command(block, tmp_path, aurous_url),
        cwd=tmp_path,
        env=_environment(aurous_url),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    output = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, f"{block.name} failed:\n{block.code}\n{output}"
