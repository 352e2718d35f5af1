"""The command's progress displays: a line per batch for logs and pipes, a bar on a terminal."""

import sys

from tqdm import tqdm

from productsync.models import SyncRun
from productsync.outcomes import BatchResult


class LineProgress:
    """One line per batch, for logs and pipes."""

    def __init__(self, out) -> None:
        self.out = out
        self.total_batches = None

    def start(self, run: SyncRun) -> None:
        if run.total_items is not None:
            self.total_batches = -(-run.total_items // run.batch_size)

    def batch(self, run: SyncRun, result: BatchResult) -> None:
        of = f"/{self.total_batches}" if self.total_batches else ""
        self.out.write(
            f"Batch {result.number}{of}: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged, {result.repaired} repaired, {result.failed} failed "
            f"({result.duration:.2f}s)"
        )

    def close(self) -> None:
        pass


class BarProgress:
    """A live bar on the terminal: items when the total is known, else bytes read."""

    def __init__(self) -> None:
        self.bar = None
        self.by_bytes = False

    def start(self, run: SyncRun) -> None:
        self.by_bytes = run.total_items is None
        total = run.bytes_total if self.by_bytes else run.total_items
        unit = "B" if self.by_bytes else " items"
        self.bar = tqdm(total=total, unit=unit, unit_scale=self.by_bytes, file=sys.stderr)

    def batch(self, run: SyncRun, result: BatchResult) -> None:
        self.bar.update((run.bytes_read - self.bar.n) if self.by_bytes else result.items)
        self.bar.set_postfix(failed=run.failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
