"""Shared steps of the end-to-end tests: building a banking77 project in a real Label Studio."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import httpx

from backend.local.quickstart_inputs import config_with_labels

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")

#: Eight banking77 intents: enough classes to make chance low (1/8), few enough that ~20 labels
#: per class train a useful model within the test's time budget.
INTENTS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "balance_not_updated_after_bank_transfer",
           "cash_withdrawal_charge", "pin_blocked", "top_up_failed", "request_refund")


def config_with_choices(template: str, choices: Iterable[str]) -> str:
    """The shipped config ``template`` (single- or multi-label) with our intents as its choices,
    built by the same function the quickstart uses for ``--labels``."""
    return config_with_labels(list(choices), multilabel=template.startswith("multi_label"))


def choice_result(spec_from: str, spec_to: str, labels: list[str]) -> list[dict]:
    return [{"from_name": spec_from, "to_name": spec_to, "type": "choices", "value": {"choices": labels}}]


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def backend_metrics(url: str) -> dict:
    return httpx.get(f"{url}/metrics", timeout=10).json()
