"""What the admin reads: a run's failures, the products its batches wrote with their links
to Oscar's dashboard, its recorded items, the last run's id."""

from typing import NamedTuple

from django.db.models import Max, Q, QuerySet
from django.db.models.functions import Length, Substr

from productsync.models import SyncBatch, SyncedProduct, SyncFailure, SyncItem, SyncRun
from productsync.records import one_line
from productsync.writer import product_dashboard_urls
from productsync.writer.catalogue import product_dashboard_url

# Images named under their group on the run page; the rest are counted.
NAMED_IMAGES = 5

__all__ = [
    "NoteGroup",
    "run_image_failures",
    "run_note_groups",
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
    at this run: (key, title, dashboard URL), looked up in one query for all the batches."""
    if not batches:
        return []
    products = list(
        SyncedProduct.objects.filter(
            last_run_id=run.pk,
            last_position__gte=batches[0].first_position,
            last_position__lte=batches[-1].last_position,
        )
        .order_by("last_position")
        .values_list("last_position", "product_id", "sync_key", "product__title")
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


# The longest search of a run's items: a UPC, SKU or title, not a document.
SEARCH_CHARS = 100


def run_items(run: SyncRun, outcome: str = "", search: str = "") -> QuerySet[SyncItem]:
    """The run's recorded items, of one outcome if given (group members are never listed),
    whose UPC, title or codes (SKUs, children's UPCs) contain search, if given (its first
    SEARCH_CHARS characters, any case)."""
    rows = SyncItem.objects.filter(run=run).exclude(outcome=SyncItem.Outcome.MEMBER)
    if outcome:
        rows = rows.filter(outcome=outcome)
    search = search.strip()[:SEARCH_CHARS]
    if search:
        rows = rows.filter(
            Q(upc__icontains=search) | Q(title__icontains=search) | Q(codes__icontains=search)
        )
    return rows


def run_last_id() -> int:
    """The id of the last run recorded, or 0."""
    return SyncRun.objects.aggregate(last=Max("pk"))["last"] or 0


class NoteGroup(NamedTuple):
    """Notes of one kind on the run page: a headline with the counts, the first few named."""

    headline: str
    named: list[str]
    more: int
    download: bool = False  # the whole group is in the run's images download


def _plural(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def run_note_groups(run: SyncRun) -> list[NoteGroup]:
    """The run's notes by kind: each remark on its own, then the images not fetched as one
    group ("21 images not fetched: 20 not available at that address, 1 not an image") naming
    the first few and counting the rest."""
    images = run.image_failures or {}
    named = images.get("named", [])
    groups = [NoteGroup(note, [], 0) for note in run.notes if note not in set(named)]
    counts = sorted(images.get("counts", {}).items(), key=lambda kind: (-kind[1], kind[0]))
    total = sum(count for _, count in counts)
    if total:
        kinds = ", ".join(f"{count} {kind}" for kind, count in counts)
        shown = named[:NAMED_IMAGES]
        headline = f"{_plural(total, 'image')} not fetched: {kinds}"
        groups.append(NoteGroup(headline, shown, total - len(shown), download=True))
    return groups


def run_image_failures(run: SyncRun) -> list[str]:
    """Every image the run did not fetch, one line each, as far as the run kept them by name,
    then how many more were only counted."""
    images = run.image_failures or {}
    named = images.get("named", [])
    lines = [one_line(text) for text in named]
    unnamed = sum(images.get("counts", {}).values()) - len(named)
    if unnamed > 0:
        lines.append(f"and {_plural(unnamed, 'image')} more not fetched, counted but not kept")
    return lines
