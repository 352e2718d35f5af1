"""What the admin reads: a run's failures, the products its batches wrote with their links
to Oscar's dashboard, its recorded items, the last run's id."""

from django.db.models import Max, QuerySet
from django.db.models.functions import Length, Substr

from productsync.models import SyncBatch, SyncedProduct, SyncFailure, SyncItem, SyncRun
from productsync.writer import product_dashboard_urls
from productsync.writer.catalogue import product_dashboard_url

__all__ = [
    "product_dashboard_urls",
    "run_batch_products",
    "run_failures",
    "run_items",
    "run_last_id",
]


def run_failures(run: SyncRun, head_chars: int) -> QuerySet[SyncFailure]:
    """The run's failures by position, each with its batch, the first head_chars of its raw
    payload (payload_head) and the payload's length (payload_length), never the whole."""
    return (
        run.failure_set.select_related("batch")
        .defer("raw_payload")
        .annotate(
            payload_head=Substr("raw_payload", 1, head_chars),
            payload_length=Length("raw_payload"),
        )
        .order_by("position")
    )


def run_batch_products(
    run: SyncRun, batches: list[SyncBatch]
) -> list[tuple[SyncBatch, list[tuple[str, str, str | None]]]]:
    """Each batch with the products it wrote, as far as the products' sync state still points
    at this run: (upc, title, dashboard URL), looked up in one query for all the batches."""
    if not batches:
        return []
    products = list(
        SyncedProduct.objects.filter(
            last_run_id=run.pk,
            last_position__gte=batches[0].first_position,
            last_position__lte=batches[-1].last_position,
        )
        .order_by("last_position")
        .values_list("last_position", "product_id", "product__upc", "product__title")
    )
    return [
        (
            batch,
            [
                (upc, title, product_dashboard_url(pk))
                for position, pk, upc, title in products
                if batch.first_position <= position <= batch.last_position
            ],
        )
        for batch in batches
    ]


def run_items(run: SyncRun, outcome: str = "") -> QuerySet[SyncItem]:
    """The run's recorded items, of one outcome if given (group members are never listed)."""
    rows = SyncItem.objects.filter(run=run).exclude(outcome=SyncItem.Outcome.MEMBER)
    return rows.filter(outcome=outcome) if outcome else rows


def run_last_id() -> int:
    """The id of the last run recorded, or 0."""
    return SyncRun.objects.aggregate(last=Max("pk"))["last"] or 0
