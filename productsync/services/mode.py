"""A run's mode: what its kind (a catalogue, a partial feed, a stock file of one partner)
implies, decided once when the run is built; the loop, planner, workers and admin ask it."""

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from productsync.conf import app_settings, failures_limit
from productsync.exceptions import ProductSyncError
from productsync.feeds import FeedOptions, feed_owns, feed_partial
from productsync.models import SyncBatch, SyncRun
from productsync.outcomes import BatchResult, FeedItem
from productsync.ownership import owns_parse
from productsync.records import default_currency
from productsync.services.history import run_note_warnings
from productsync.services.validate import (
    catalogue_items,
    catalogue_validate,
    partial_items,
    partial_validate,
    records_of,
)
from productsync.signals import batch_committed
from productsync.writer import BatchWriter, ImageSync, PartialWriter

CATALOGUE, PARTIAL, STOCK = "catalogue", "partial", "stock"


@dataclass(frozen=True)
class RunMode:
    """What a kind of run does: how its items are validated and written, whether it may
    create and hide products, its default batch size. What follows each commit is the same
    for every kind (batch_after_commit: a partial item brings no images)."""

    kind: str
    # A chunk's items to write and what was looked up meanwhile: (writer, chunk, result,
    # dry_run) -> (valid items, looked_up).
    items: Callable[[Any, list[FeedItem], BatchResult, bool], tuple[list, Any]]
    # A chunk's items validated, every one (a batch that could not be written).
    validate: Callable[[list[FeedItem], BatchResult], list]
    # The feed's stock levels overwrite the shop's whenever its items are written; else a
    # level is written only when the feed's value changes (orders' consumption stays).
    stock_authoritative: bool = False
    # The partner whose stock records a stock run writes, and no other's.
    partner: str | None = None
    # More failed items than this (a count, or "N%" of the items read) end the run failed.
    max_failures: str | None = None
    # Let through a run that changes one field of most products it matches (services.guard).
    allow_mass_change: bool = False
    # Which items it writes: all (""), new products only ("create"), existing only ("update").
    only: str = ""
    # The fields the run writes, and no other, whatever its items carry (None: all fields).
    owns: tuple[str, ...] | None = None
    # Every product compared with its item by value, not only the ones change capture saw
    # edited (after edits that bypassed the triggers); reads every item.
    compare: bool = False

    @property
    def partial(self) -> bool:
        """Items carry only what they change (see productsync.partial)."""
        return self.kind != CATALOGUE

    @property
    def may_create(self) -> bool:
        return not self.partial

    @property
    def may_hide(self) -> bool:
        return not self.partial

    @property
    def may_skip_unchanged_file(self) -> bool:
        """Whether an unchanged file may end the run at once (a partial file is read every
        time: comparing its items is what it costs; a run that writes only new or only
        existing products leaves the others for the next run to write)."""
        return not (self.partial or self.only)

    @property
    def default_batch_size(self) -> int:
        return app_settings.PARTIAL_BATCH_SIZE if self.partial else app_settings.BATCH_SIZE

    def writer(self, run: SyncRun) -> "BatchWriter | PartialWriter":
        """The writer of a run's batches: a partial run's changes only what its items give."""
        if self.partial:
            return PartialWriter()
        writer = BatchWriter(run.pk, run.source, default_currency())
        writer.stock_authoritative = self.stock_authoritative
        writer.only = self.only
        writer.compare = self.compare
        return writer

    def failures_over(self, run: SyncRun) -> str:
        """Why the run stops here: more of its items failed than max_failures allows; or ''."""
        if self.max_failures is None:
            return ""
        limit, percent = failures_limit_parse(self.max_failures)
        allowed = run.items * limit / 100 if percent else limit
        if run.failed <= allowed:
            return ""
        return (
            f"stopped after item {run.start_position + run.items - 1}: {run.failed} of "
            f"{run.items} items failed, more than the failure limit ({self.max_failures})"
        )

    def start_notes(self) -> list[str]:
        """What every run of this mode says in its notes from its start."""
        notes = []
        if self.stock_authoritative:
            notes.append(
                "stock authoritative: each item written sets its stock levels to the feed's, "
                "units that orders consumed since included"
            )
        if self.owns:
            notes.append(f"owns {', '.join(self.owns)}: no other field is written")
        return notes

    def prepare(self, writer, chunk: list[FeedItem]) -> None:
        """Create what the chunk's items need (classes, categories, partners) before workers
        write them side by side; a run that may not create creates nothing."""
        if self.may_create:
            writer.prepare(records_of(chunk, self.owns))


def batch_after_commit(
    run: SyncRun, batch: SyncBatch, result: BatchResult, images: ImageSync, beat=None
) -> None:
    """What follows a batch's commit, in a local run as in a queue worker: fetch its images
    unless PRODUCTSYNC['FETCH_IMAGES'] is off (no transaction held open on a slow image
    server), count their warnings on the run, send batch_committed. Nothing after a dry run."""
    if run.dry_run:
        return
    if app_settings.FETCH_IMAGES:
        warnings = images.sync(result.images, beat=beat)
        run_note_warnings(run, warnings)
    batch_committed.send(sender=SyncRun, run=run, batch=batch, product_ids=result.product_ids)


MODES = {
    CATALOGUE: RunMode(CATALOGUE, catalogue_items, catalogue_validate),
    PARTIAL: RunMode(PARTIAL, partial_items, partial_validate),
    STOCK: RunMode(STOCK, partial_items, partial_validate),
}


def mode_decide(
    partial: bool | None,
    options: FeedOptions,
    original: SyncRun | None = None,
    kind: str | None = None,
    stock_authoritative: bool | None = None,
    max_failures: str | int | None = None,
    allow_mass_change: bool | None = None,
    only: str | None = None,
    owns: str | list | None = None,
    compare: bool | None = None,
) -> RunMode:
    """The mode of a new run: a feed's kind (catalogue, partial, stock) when it has one,
    whatever the settings' defaults; else partial when asked (default PRODUCTSYNC['PARTIAL'];
    a retry or a resumed run as its original), for a stock file's partner (options.partner)
    or a mapping that declares it; a stock file when it has a partner (with a preset, the
    partner names the feed's stock records' partner: a whole feed). A stock run writes its
    partner's stock records only. Authoritative for stock when asked (default
    PRODUCTSYNC['STOCK_AUTHORITATIVE']). Ended failed by more failed items than max_failures
    (default PRODUCTSYNC['MAX_FAILURES']; ProductSyncError for a limit that is not one).
    allow_mass_change, only, compare: see writes_decide. Writing only the fields owns names
    (default: those the feed's mapping owns)."""
    if stock_authoritative is None:
        stock_authoritative = app_settings.STOCK_AUTHORITATIVE
    if max_failures is None:
        max_failures = app_settings.MAX_FAILURES
    if max_failures is not None:
        max_failures = str(max_failures).strip()
        failures_limit_parse(max_failures)
    mode = _kind_decide(partial, options, original, kind)
    mode = dataclasses.replace(
        mode, stock_authoritative=bool(stock_authoritative), max_failures=max_failures
    )
    mode = writes_decide(mode, original, allow_mass_change, only, compare)
    if owns is None:  # a retry or a resumed run owns what its original owned
        owns = original.owns or None if original is not None else feed_owns(options)
    return mode_owning(mode, owns)


def writes_decide(
    mode: RunMode,
    original: SyncRun | None,
    allow_mass_change: bool | None,
    only: str | None,
    compare: bool | None = None,
) -> RunMode:
    """The mode, letting a mass change through when asked, writing only new products (only
    "create") or only existing ones ("update") when asked, comparing every product by value
    when asked; a resumed run or a retry not told otherwise does as its original.
    ProductSyncError for another only, or "create" or compare in a partial run."""
    if compare is None:
        compare = original is not None and original.compare
    if compare and mode.partial:
        raise ProductSyncError("compare: a partial run compares every item it reads already")
    if allow_mass_change is None:
        allow_mass_change = original is not None and original.allow_mass_change
    if only is None:
        only = original.only if original is not None else ""
    only = str(only or "").strip()
    if only not in ("", "create", "update"):
        raise ProductSyncError(f"only: must be 'create' or 'update', not {only[:40]!r}")
    if only == "create" and not mode.may_create:
        raise ProductSyncError("only create: a partial run creates no products")
    return dataclasses.replace(
        mode, allow_mass_change=bool(allow_mass_change), only=only, compare=bool(compare)
    )


def mode_owning(mode: RunMode, owns) -> RunMode:
    """The mode writing only the fields owns names ("price,num_in_stock", a list, or None
    for every field); ProductSyncError names an unknown field."""
    owns = owns_parse(owns)
    if owns is None:
        return mode
    if mode.partial:
        raise ProductSyncError(
            "owns: a partial feed's items already write only what they give; owns is for "
            "catalogue feeds"
        )
    return dataclasses.replace(
        mode,
        owns=owns,
        items=functools.partial(catalogue_items, owns=owns),
        validate=functools.partial(catalogue_validate, owns=owns),
    )


def _kind_decide(
    partial: bool | None, options: FeedOptions, original: SyncRun | None, kind: str | None
) -> RunMode:
    partner = original.partner if original is not None and original.partner else options.partner
    if kind:
        # A partial feed naming a partner is bounded by it as a stock file is.
        return stock_mode(partner) if kind != CATALOGUE and partner else MODES[kind]
    if original is not None:
        partial = original.partial
    elif partial is None:
        partial = app_settings.PARTIAL
    made_partial = feed_partial(options)  # a preset's partner names a whole feed's
    if partner and (made_partial or (original is not None and original.partner)):
        return stock_mode(partner)
    return MODES[PARTIAL if partial or made_partial else CATALOGUE]


def failures_limit_parse(value) -> tuple[int, bool]:
    """A failure limit as (number, whether a percentage), see conf.failures_limit; raise
    ProductSyncError for anything else."""
    limit = failures_limit(value)
    if limit is None:
        raise ProductSyncError(
            "the failure limit must be a number of items or a percentage up to 100% "
            f"(such as 50 or 10%), not {str(value)[:40]!r}"
        )
    return limit


def stock_mode(partner: str) -> RunMode:
    """The mode of a stock run of this partner: its items may touch that partner's stock
    records only."""
    return dataclasses.replace(
        MODES[STOCK],
        partner=partner,
        items=functools.partial(partial_items, partner=partner),
        validate=functools.partial(partial_validate, partner=partner),
    )


def run_mode(run: SyncRun) -> RunMode:
    """The mode of a recorded run, as it was decided when it started."""
    kind = MODES[PARTIAL if run.partial else CATALOGUE]
    mode = stock_mode(run.partner) if run.partner else kind
    mode = dataclasses.replace(
        mode,
        stock_authoritative=run.stock_authoritative,
        allow_mass_change=run.allow_mass_change,
        only=run.only,
        compare=run.compare,
    )
    return mode_owning(mode, run.owns or None)
