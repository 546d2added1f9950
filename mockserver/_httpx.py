"""httpx, imported without its command-line client.

``import httpx`` also imports ``httpx._main`` (the ``httpx`` command) whenever click, rich and pygments are
installed, as they are beside schemathesis: 50–120 ms of a test run spent on a terminal UI nobody in the process
uses (issue 18 §2). :func:`load` imports httpx with that one submodule held back, so httpx takes its documented
"CLI extras missing" path, then lets go of the block: ``import httpx._main`` afterwards imports it as usual. Only
``httpx.main`` (the console script's entry point, which runs in a process of its own) is httpx's placeholder in a
process whose first import of httpx came through here.
"""

from __future__ import annotations

import sys

_CLI = "httpx._main"


def load() -> None:
    """Import httpx if no one has yet; ``import httpx`` after it costs nothing."""
    if "httpx" in sys.modules:
        return
    blocked = _CLI not in sys.modules
    if blocked:
        sys.modules[_CLI] = None  # type: ignore[assignment]  # the import system's "not importable" marker
    try:
        import httpx  # noqa: F401
    finally:
        if blocked and sys.modules.get(_CLI, ...) is None:
            del sys.modules[_CLI]
