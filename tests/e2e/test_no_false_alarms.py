"""The acceptance loop, short: one long-running emulator, a quiet run of ``--profile full`` with a fresh key, then
one (another fresh key, on the state the first left) while the noisy neighbour works in the same team. No run may
report a finding (the full loop is ``python -m contracts.no_false_alarms``: seeds 1–20 and 5 noisy runs)."""

from __future__ import annotations

import pytest

from contracts.no_false_alarms import emulator, soak

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_full_profile_reports_nothing_on_the_emulator_quiet_or_with_a_noisy_neighbour():
    lines: list[str] = []
    with emulator() as url:
        runs = soak(url, seeds=1, noisy=1, max_examples=1, progress=lines.append)  # the documented loop: 10
    assert [run.exit_code for run in runs] == [0, 0], "\n".join(lines)
    assert all(run.findings == 0 for run in runs)
    noisy = runs[-1]
    assert noisy.noisy
    assert noisy.neighbour_actions > 10, "the neighbour must really have worked during the run"
