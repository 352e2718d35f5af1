"""The item rows of a run (SyncItem): every item of a dry run, with its changed fields in a
preview; the updated items of a real run with theirs, up to PRODUCTSYNC['CHANGES_MAX']."""

from django.db.models import Count

from productsync.conf import app_settings
from productsync.models import SyncItem, SyncRun
from productsync.outcomes import BatchResult
from productsync.sql import insert_rows

Outcome = SyncItem.Outcome


def items_writer_set(writer, run: SyncRun) -> None:
    """Tell the run's writer what to record for its next batch."""
    writer.outcomes = run.dry_run
    writer.changes = run.diff if run.dry_run else run.item_rows < app_settings.CHANGES_MAX


ITEM_FIELDS = ["run_id", "position", "upc", "outcome", "changes", "message", "title", "codes"]


def items_record(run: SyncRun, result: BatchResult) -> None:
    """Store the batch's item rows in the caller's transaction (a dry run's too: only its
    writes are rolled back) and count them on the run."""
    rows = [
        (
            run.pk,
            o.position,
            o.upc[:255],
            o.outcome,
            SyncItem.changes_kept(o.changes),
            "",
            o.title[:255],
            SyncItem.codes_kept(o.codes),
        )
        for o in result.outcomes
    ]
    if run.dry_run:
        rows += [
            (run.pk, f.position, f.upc[:255], Outcome.FAILED, None, f.message, "", "")
            for f in result.failures
        ]
    else:
        rows = rows[: max(0, app_settings.CHANGES_MAX - run.item_rows)]
    insert_rows(SyncItem, ITEM_FIELDS, rows)
    run.item_rows += len(rows)


def items_note_unrecorded(run: SyncRun) -> None:
    """Note on a real run how many of its updated items have no changes recorded."""
    if run.dry_run or not run.updated:
        return
    recorded = run.item_set.filter(outcome=Outcome.UPDATED).aggregate(n=Count("pk"))["n"]
    if recorded < run.updated:
        missing = run.updated - recorded
        run.notes.append(
            f"changes of {missing} updated item{'s' if missing != 1 else ''} not recorded: "
            f"PRODUCTSYNC['CHANGES_MAX'] ({app_settings.CHANGES_MAX}) was reached"
        )
        run.save(update_fields=["notes"])
