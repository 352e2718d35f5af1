"""What the admin shows of a run: live progress figures, the per-batch picture, product links."""

import math
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Sum
from django.utils import timezone

from productsync.models import SyncBatch, SyncRun

# More batches than this are drawn as buckets of consecutive batches, so the picture of a
# run with a million items stays a few hundred shapes.
MAX_BARS = 500
# The worst outcome of a bucket gives its colour.
SEVERITY = {
    SyncBatch.Status.SUCCEEDED: 0,
    SyncBatch.Status.PARTIAL: 1,
    SyncBatch.Status.FAILED: 2,
}


def duration_text(seconds: float | None) -> str:
    """A duration as people read it: 42 s, 3 min 05 s, 2 h 10 min."""
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _bytes(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GB"


def run_duration(run: SyncRun, now: datetime | None = None) -> float:
    """Seconds from start to finish, or to now while the run goes on."""
    end = run.finished_at or now or timezone.now()
    return max((end - run.started_at).total_seconds(), 0.0)


def counted(number: int, word: str, plural: str = "") -> str:
    """A count with its noun in the right number: 1 batch, 2 batches, 0 items."""
    if number == 1:
        return f"{number} {word}"
    return f"{number} {plural or word + ('es' if word.endswith(('s', 'ch', 'sh')) else 's')}"


def _progress_measure(run: SyncRun) -> tuple[str, int, int | None]:
    """What progress counts: (unit, done, total), items when the total is known, else bytes."""
    if run.total_items is not None:
        return "items", run.items, run.total_items
    if run.bytes_total:
        return "bytes", run.bytes_read, run.bytes_total
    return "items", run.items, None


def _progress_percent(run: SyncRun, done: int, total: int | None, running: bool) -> float | None:
    """Percent done, or None where a bar would mislead: a run that failed, stopped or read
    nothing is never shown as a bar, full or not."""
    if running:
        return None if total is None else min(100.0, 100.0 * done / total) if total else 0.0
    completed = run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.COMPLETED_WITH_FAILURES)
    if not (completed and done):
        return None
    return min(100.0, 100.0 * done / total) if total else 100.0


def run_batch_seconds(run: SyncRun) -> float:
    """Seconds the run's batches took themselves (reading and writing, not image fetching
    after commit nor waiting in a queue)."""
    total = SyncBatch.objects.filter(run=run).aggregate(seconds=Sum("duration"))["seconds"]
    return total or 0.0


def _rate_text(rate: float | None, unit: str) -> str:
    if rate is None:
        return "–"
    return f"{_bytes(rate)}/s" if unit == "bytes" else f"{rate:.1f} items/s"


def run_progress(run: SyncRun, now: datetime | None = None) -> dict:
    """Done/total, rate and ETA, as numbers and as the text the page shows. The rate is over
    the batches' own time; the ETA over the wall clock up to the last recorded batch."""
    now = now or timezone.now()
    unit, done, total = _progress_measure(run)
    running = run.status == SyncRun.Status.RUNNING
    measured_s = (run.heartbeat_at if running else run.finished_at or now) - run.started_at
    measured_s = measured_s.total_seconds()
    # Items per second of the batches' own work; bytes per second of the whole reading.
    spent = run_batch_seconds(run) if done and unit == "items" else measured_s
    rate = done / spent if done and spent > 0 else None
    eta = None
    if running and done and measured_s > 0 and total is not None:
        since_last = (now - run.heartbeat_at).total_seconds()
        eta = max((total - done) / (done / measured_s) - since_last, 0.0)
    percent = _progress_percent(run, done, total, running)
    show = _bytes if unit == "bytes" else str
    done_text = show(done) + (f" / {show(total)}" if total is not None else "")
    if unit == "items":
        done_text = counted(done, "item") if total is None else f"{done_text} items"
    if percent is not None:
        done_text += f" ({percent:.0f}%)"
    return {
        "running": running,
        "status": run.status,
        "unit": unit,
        "done": done,
        "total": total,
        "percent": percent,
        "rate": rate,
        "eta": eta,
        "text": {
            "done": done_text,
            "rate": _rate_text(rate, unit),
            "eta": duration_text(eta) if running else "finished",
            "elapsed": duration_text(run_duration(run, now)),
            "status": run.get_status_display(),
            **{key: str(getattr(run, key)) for key in SyncRun.COUNTERS},
        },
    }


@dataclass(frozen=True)
class Bar:
    """One shape of the run picture: x, width and height in percent of the picture."""

    x: float
    width: float
    height: float
    status: str
    first_batch: int
    last_batch: int
    title: str

    @property
    def y(self) -> float:
        return 100.0 - self.height


def run_picture(run: SyncRun) -> list[Bar]:
    """One bar per batch along the feed (placed by item position, coloured by outcome, as
    tall as its duration relative to the slowest), in one query."""
    rows = list(
        SyncBatch.objects.filter(run=run)
        .order_by("number")
        .values_list("number", "first_position", "last_position", "status", "duration", "failed")
    )
    if not rows:
        return []
    span = max(run.total_items or 0, rows[-1][2] + 1, 1)
    size = math.ceil(len(rows) / MAX_BARS)
    buckets = [rows[i : i + size] for i in range(0, len(rows), size)]
    seconds = [sum(r[4] for r in bucket) for bucket in buckets]
    slowest = max(seconds) or 1.0
    bars = []
    for bucket, duration in zip(buckets, seconds, strict=True):
        first, last = bucket[0], bucket[-1]
        status = max((r[3] for r in bucket), key=lambda s: SEVERITY.get(s, 0))
        failed = sum(r[5] for r in bucket)
        what = f"Batch {first[0]}" if len(bucket) == 1 else f"Batches {first[0]}–{last[0]}"
        bars.append(
            Bar(
                x=100.0 * first[1] / span,
                width=max(100.0 * (last[2] - first[1] + 1) / span, 0.05),
                height=max(100.0 * duration / slowest, 3.0),
                status=status,
                first_batch=first[0],
                last_batch=last[0],
                title=(
                    f"{what}: items {first[1]}–{last[2]}, {status}, {failed} failed, "
                    f"{duration:.2f} s"
                ),
            )
        )
    return bars
