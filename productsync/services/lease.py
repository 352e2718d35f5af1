"""The lease: one running non-dry run per source, held by its row, checked before writes."""

import os
import socket
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from productsync.conf import app_settings
from productsync.exceptions import LeaseLostError, ProductSyncError, RunActiveError
from productsync.models import SyncBatch, SyncRun
from productsync.services.alerts import run_ended
from productsync.sql import update_row

Status = SyncRun.Status


BatchStatus = SyncBatch.Status


def sync_run_abort_stale() -> int:
    """End aborted the runs whose process stopped heart-beating for STALE_AFTER seconds
    (killed, its machine lost), releasing their lease, each with a note saying why; return
    how many. Called at every run's start and resume, at every queued batch's start and when
    the admin lists runs, so a dead run is noticed by whatever comes next."""
    cutoff = timezone.now() - timedelta(seconds=app_settings.STALE_AFTER)
    stale = SyncRun.objects.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff)
    ended = 0
    for run in stale.only("pk", "owner", "workers"):
        reason = _stale_reason(run)
        # Conditional: a run that beat meanwhile, or that another sweep ended, is left alone.
        if stale.filter(pk=run.pk).update(
            status=Status.ABORTED, finished_at=timezone.now(), error=reason
        ):
            ended += 1
            run_ended(SyncRun.objects.get(pk=run.pk))
    return ended


def _stale_reason(run: SyncRun) -> str:
    """Why a run is taken for dead, and for a queue run what its resume will write."""
    owner = f" from {run.owner}" if run.owner else ""
    reason = f"no heartbeat{owner} for {app_settings.STALE_AFTER}s: the process is taken for dead"
    left = run.batch_set.filter(status__in=(BatchStatus.PENDING, BatchStatus.RUNNING)).count()
    if left:
        reason += f"; {left} batch{'es' if left > 1 else ''} left unwritten, for a resume to write"
    return reason


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_record(fields: dict) -> SyncRun:
    """Record a new running run with fields (SyncRun's). A non-dry run takes the source's
    lease; if another run holds it, a skipped run is recorded and RunActiveError raised."""
    sync_run_abort_stale()
    fields = {**fields, "owner": owner_name()}
    source = fields["source"]
    queued = fields.pop("queued_run", None)
    try:
        with transaction.atomic():
            if queued is not None:
                return _run_take_queued(queued, fields)
            return SyncRun.objects.create(**fields)
    except IntegrityError:
        active = SyncRun.objects.filter(source=source, status=Status.RUNNING, dry_run=False).first()
        reason = f"run {active.pk if active else '?'} of this source is still running"
        if active and active.owner:
            reason += f" (in {active.owner})"
        now = timezone.now()
        ended = {"status": Status.SKIPPED, "error": reason, "finished_at": now}
        if queued is not None:
            SyncRun.objects.filter(pk=queued).update(**fields, **ended)
            skipped = SyncRun.objects.get(pk=queued)
        else:
            skipped = SyncRun.objects.create(**fields, **ended)
        error = RunActiveError(f"Run {skipped.pk} skipped: {reason}")
        error.run_id = skipped.pk  # the face shows its summary
        raise error from None


def _run_take_queued(run_id: int, fields: dict) -> SyncRun:
    """Start a run recorded `queued` (a pushed file's) with these fields: it keeps its id."""
    now = timezone.now()
    started = SyncRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
        **fields, status=Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not started:
        raise ProductSyncError(f"run {run_id} is no longer queued")
    return SyncRun.objects.get(pk=run_id)


def lease_check(run: SyncRun) -> None:
    """Lock the run's row and make sure it is still running: a run taken for dead (marked
    aborted) must not come back to life and write over the lease of a newer run."""
    status = (
        SyncRun.objects.select_for_update().filter(pk=run.pk).values_list("status", flat=True)
    ).first()
    if status != Status.RUNNING:
        raise _lease_lost(run, status)


def run_save_if_running(run: SyncRun, fields: list[str]) -> None:
    """Save fields of the run, which must still be running: the lease check and the update
    in one statement (the update takes the row lock the check would)."""
    if not update_row(
        SyncRun, run.pk, {name: getattr(run, name) for name in fields}, status=Status.RUNNING
    ):
        raise _lease_lost(
            run, SyncRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        )


def _lease_lost(run: SyncRun, status: str | None) -> LeaseLostError:
    return LeaseLostError(
        f"run {run.pk} was marked {status} by another process (taken for dead): "
        "it stopped, its batch undone"
    )
