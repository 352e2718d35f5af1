"""A batch's items validated for the writer: full catalogue items, or partial items."""

from typing import Any

from productsync.exceptions import RecordError
from productsync.outcomes import BatchResult, FeedItem, ItemFailure, ValidItem
from productsync.ownership import record_fingerprint, record_owned
from productsync.partial import KNOWN_KEYS as PARTIAL_KEYS
from productsync.partial import PartialItem, partial_parse, stock_item
from productsync.records import (
    KNOWN_KEYS,
    Unparsed,
    default_currency,
    payload_dump,
    printable,
    raw_fingerprint,
    record_parse,
)
from productsync.writer import html_policy, items_lock, unchanged_skip


def upc_of(payload: Any) -> str:
    """The upc an item's payload names, printable, or ''."""
    if isinstance(payload, Unparsed):  # a mapped item that failed names its upc
        return printable(payload.upc)[:255]
    upc = payload.get("upc") if isinstance(payload, dict) else None
    return printable(upc if isinstance(upc, str) else str(upc))[:255] if upc is not None else ""


def _fingerprints(chunk: list[FeedItem], currency: str, owns=None) -> dict[int, str]:
    """By position, the raw fingerprint of each item that is an object, as read, with what
    else decides its writes: the default currency, the HTML sanitising in force and the
    fields the run owns."""
    context = f"{currency}\n{html_policy()}" + (f"\nowns {','.join(owns)}" if owns else "")
    return {
        item.position: raw_fingerprint(item.payload, context, item.raw)
        for item in chunk
        if isinstance(item.payload, dict)
    }


def _unknown_keys(payload: dict, result: BatchResult, known=KNOWN_KEYS) -> None:
    unknown = payload.keys() - known
    if unknown:
        result.unknown_keys.update(unknown)
        result.warnings += 1


def _invalid(item: FeedItem, exc: RecordError) -> ItemFailure:
    """The failure of an item that did not validate, with its raw payload."""
    return ItemFailure(
        item.position, upc_of(item.payload), str(exc), payload_dump(item.payload), exc.field
    )


def catalogue_validate(
    chunk: list[FeedItem], result: BatchResult, fingerprints: dict | None = None, owns=None
) -> list[ValidItem]:
    """Each full item of chunk validated, carrying only the fields the run owns (owns: all
    when None); the others recorded failed on result."""
    if fingerprints is None:
        fingerprints = _fingerprints(chunk, default_currency(), owns)
    valid = []
    policy = html_policy()  # in the fingerprint: a product stored unsanitised is written again
    for item in chunk:
        try:
            record = record_owned(record_parse(item.payload), owns)
        except RecordError as exc:
            result.failures.append(_invalid(item, exc))
            continue
        _unknown_keys(item.payload, result)
        valid.append(
            ValidItem(
                item.position,
                record,
                record_fingerprint(record, policy, owns),
                item.payload,
                fingerprints[item.position],
            )
        )
    return valid


def partial_validate(
    chunk: list[FeedItem], result: BatchResult, partner: str | None = None
) -> list[PartialItem]:
    """Each partial item of chunk validated; the others recorded failed on result. With the
    run's partner, an item that names another partner's stock record fails alone."""
    valid = []
    for item in chunk:
        lean = stock_item(item.position, item.payload)  # a plain stock row: no pydantic
        if lean is None:
            try:
                lean = PartialItem(item.position, partial_parse(item.payload), item.payload)
            except RecordError as exc:
                result.failures.append(_invalid(item, exc))
                continue
            _unknown_keys(item.payload, result, PARTIAL_KEYS)
        try:
            _partner_check(lean.record, partner)
        except RecordError as exc:
            result.failures.append(_invalid(item, exc))
            continue
        valid.append(lean)
    return valid


def _partner_check(record, partner: str | None) -> None:
    """Raise RecordError when the record changes a stock record of a partner other than the
    run's: a run's partner bounds what it touches."""
    for change in record.stock if partner else ():
        if change.partner != partner:
            raise RecordError(
                f"partner: row names partner {change.partner!r}, this run writes {partner!r} only",
                field="partner",
            )


def partial_items(
    writer, chunk: list[FeedItem], result: BatchResult, dry_run, partner: str | None = None
) -> tuple[list, Any]:
    """The items of a partial batch to write (with the run's partner, only its stock
    records): each is compared by its writer."""
    return partial_validate(chunk, result, partner), None


def catalogue_items(
    writer, chunk: list[FeedItem], result: BatchResult, dry_run, owns=None
) -> tuple[list, Any]:
    """The items of a batch to write, validated, and what was looked up meanwhile. Items the
    last sync wrote as they are now are counted unchanged first, never validated. owns: the
    fields the run owns (all when None)."""
    fingerprints = _fingerprints(chunk, writer.default_currency, owns)
    if writer.outcomes or writer.compare:
        # A dry run says what would happen to every item: each goes through the writer,
        # which records its outcome (and finds duplicates across batches); a run comparing
        # by value compares every item there.
        valid = catalogue_validate(chunk, result, fingerprints, owns)
        items_lock(valid)
        return valid, None
    rest, looked_up = unchanged_skip(
        writer.run_id, writer.source, chunk, fingerprints, result, stamp=not dry_run
    )
    if len(rest) < len(chunk):
        positions = {item.position for item in rest}
        for item in chunk:
            if item.position not in positions:
                _unknown_keys(item.payload, result)
    valid = catalogue_validate(rest, result, fingerprints, owns)
    # Another run writing the same UPCs or SKUs now waits for this batch's commit (and this
    # one for its), so the writer's checks read what is committed and hold until the write;
    # what unchanged_skip read before the lock may be stale, so the writer reads it again.
    if items_lock(valid):
        looked_up = None
    return valid, looked_up


def records_of(chunk: list[FeedItem], owns=None):
    """The records of chunk's items that validate (what a planner prepares for), carrying
    the fields the run owns."""
    for item in chunk:
        try:
            yield record_owned(record_parse(item.payload), owns)
        except RecordError:
            continue
