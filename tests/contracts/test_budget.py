"""Budget: refuse a billable call that would cross the cap, book what a 2xx charged, ignore free calls."""

from __future__ import annotations

import pytest

from contracts.budget import FALLBACK_COST, Budget, BudgetExceeded, charged


def test_budget_refuses_call_that_would_exceed_cap():
    budget = Budget(5, estimator=lambda operation, body: 4.0)
    assert budget.guard("createImage", {}) == 4.0
    budget.book("createImage", {"cost": {"amount": 4}})
    with pytest.raises(BudgetExceeded, match="above the cap of 5") as caught:
        budget.guard("createImage", {})
    assert (caught.value.spent, caught.value.cost) == (4.0, 4.0)
    assert budget.refused == ["createImage"]


def test_budget_zero_cap_refuses_every_billable_call():
    with pytest.raises(BudgetExceeded):
        Budget(0, estimator=lambda operation, body: 0.5).guard("createVideo", {})


def test_budget_ignores_free_operations_and_unlimited_cap():
    assert Budget(0).guard("getBalance", {}) == 0.0
    assert Budget(None).guard("createImage", {}) == 0.0


def test_budget_falls_back_to_rate_card_when_estimate_unavailable():
    budget = Budget(100, estimator=lambda operation, body: None)
    assert budget.guard("resynthesizeCharacter", {}) == FALLBACK_COST["resynthesizeCharacter"]


def test_budget_book_raises_when_a_2xx_crossed_the_cap():
    budget = Budget(0)
    with pytest.raises(BudgetExceeded):
        budget.book("createImage", {"cost": {"amount": 1}})
    assert budget.spent == 1.0


def test_charged_reads_cost_amount():
    assert charged({"cost": {"amount": 2.5}}) == 2.5
    assert charged({"id": "x"}) == 0.0
    assert charged(None) == 0.0
