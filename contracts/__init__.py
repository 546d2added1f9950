"""The contract-test kit: checks any Aurous API target (live, emulator, in-process) against openapi.yaml.

It speaks only HTTP and never imports ``mockserver``, so the same suites run against every target.
"""

from __future__ import annotations

__all__: list[str] = []
