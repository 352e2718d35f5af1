"""Hide-missing: a complete run hides the source's products it did not see."""

from productsync.conf import app_settings
from productsync.models import SyncedProduct, SyncFailure, SyncRun
from productsync.services.spec import RunSpec
from productsync.writer import products_hide, products_missing


def run_hide_missing(run: SyncRun, spec: RunSpec, error: str) -> None:
    """Hide the products of the source this run did not see, if the run saw the whole feed
    in one pass (not resumed, not a retry, no --limit, not a partial feed, not failed) and
    would not hide too many; otherwise note on the run why nothing was hidden."""
    why_not = ""
    if error:
        why_not = "the run did not read the whole feed"
    elif spec.limit is not None:
        why_not = "a limit read only part of the feed"
    elif run.dry_run:
        why_not = "this is a dry run"
    elif run.resumed_from_id is not None:
        why_not = "a resumed run reads only the rest of the feed"
    elif run.retry_of_id is not None:
        why_not = "a retry reads only the failed items"
    elif not spec.mode.may_hide:
        why_not = "this is a partial run"
    elif spec.mode.only == "create":
        why_not = "this run creates new products only, leaving the feed's existing ones untouched"
    elif run.status == SyncRun.Status.FAILED:
        why_not = "the run failed"
    elif SyncFailure.objects.filter(run=run, upc="").exists():
        why_not = "some failed items have no readable upc, so their products are unknown"
    if why_not:
        run.notes.append(f"hide-missing: nothing hidden because {why_not}")
        run.save(update_fields=["notes"])
        return
    failed_upcs = SyncFailure.objects.filter(run=run).values_list("upc", flat=True)
    ids = products_missing(run.source, run.pk, failed_upcs)
    total = SyncedProduct.objects.filter(source=run.source).count()
    limit_fraction = app_settings.HIDE_MISSING_MAX_FRACTION
    if ids and len(ids) > limit_fraction * total:
        run.notes.append(
            f"hide-missing: nothing hidden because {len(ids)} of the source's {total} products "
            f"({len(ids) / total:.0%}) are missing from the feed, more than "
            f"PRODUCTSYNC['HIDE_MISSING_MAX_FRACTION'] ({limit_fraction:.0%})"
        )
        run.save(update_fields=["notes"])
        return
    products_hide(ids)
    run.hidden += len(ids)
    run.notes.append(f"hide-missing: {len(ids)} products missing from the feed hidden")
    run.save(update_fields=["hidden", "notes"])
