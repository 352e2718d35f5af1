"""Streaming: memory is bounded by the batch size, not by the size of the feed."""

import gc
import json
import tracemalloc

import pytest

from productsync.services import sync_run_execute
from tests.conftest import product

pytestmark = pytest.mark.django_db


def peak_bytes(tmp_path, items: int, name: str) -> int:
    path = tmp_path / name
    with path.open("w", encoding="utf-8") as f:
        f.write("[")
        f.write(",".join(json.dumps(product(f"{name}-{i}")) for i in range(items)))
        f.write("]")
    tracemalloc.start()
    try:
        # Collecting after each batch makes the peak what is really held, not garbage
        # that the cycle collector has not reached yet.
        # The reader's memory, the mass-change guard's read-ahead aside (its window is
        # bounded apart: tests/services/test_mass_change.py).
        run = sync_run_execute(
            str(path),
            batch_size=50,
            dry_run=True,
            on_batch=lambda run, result: gc.collect(),
            allow_mass_change=True,
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert run.items == items


def test_peak_memory_stays_flat_as_the_feed_grows_fivefold(tmp_path):
    peak_bytes(tmp_path, 50, "warm")  # imports and caches that happen once
    small = peak_bytes(tmp_path, 200, "small")
    large = peak_bytes(tmp_path, 1000, "large")
    # The large feed is 5x the small one; a reader that held the feed would peak ~5x higher.
    assert large < small * 1.5, (small, large)
