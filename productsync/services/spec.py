"""A run's options: defaulted and validated once, then passed inward as one frozen RunSpec."""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from productsync.conf import MAX_BATCH_SIZE, app_settings
from productsync.exceptions import ProductSyncError, SourceError
from productsync.feeds import Feed, FeedOptions, feed_partial
from productsync.models import SyncRun
from productsync.services.resume import _resume_point
from productsync.services.source import source_key, source_options


@dataclass(frozen=True)
class RunSpec:
    """What one run is to do, every default applied (see run_spec_build)."""

    source: str
    batch_size: int
    dry_run: bool = False
    limit: int | None = None
    trigger: str = SyncRun.Trigger.COMMAND
    hide_missing: bool = False
    feed: FeedOptions = field(default_factory=FeedOptions)
    workers: str = SyncRun.Workers.LOCAL
    full: bool = False
    retry_of: SyncRun | None = None
    # Turns the source into a Feed instead of reading it (a retry reads failed items).
    open_feed: Callable[[str], Feed] | None = None
    resumed_from: SyncRun | None = None
    start: int = 0  # feed position of the first item to read (a resumed run's)
    # Items carry only what they change (see productsync.partial); never hides.
    partial: bool = False
    # A dry run records every item's outcome; with diff, also its changed fields (a preview).
    diff: bool = False
    # More SyncRun fields recorded at its start: the admin's uploaded file, its preview.
    record: dict = field(default_factory=dict)

    @property
    def whole_file(self) -> bool:
        """Whether the run reads its source's whole feed, as itself (a partial run's file is
        read every time: comparing its items is what it costs)."""
        return not (
            self.dry_run
            or self.open_feed
            or self.limit is not None
            or self.resumed_from is not None
            or self.partial
        )


def run_spec_build(
    source: str | None = None,
    *,
    batch_size: int | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    trigger: str = SyncRun.Trigger.COMMAND,
    hide_missing: bool | None = None,
    feed_options: dict | None = None,
    retry_of: SyncRun | None = None,
    open_feed: Callable[[str], Feed] | None = None,
    workers: str | None = None,
    resume: int | None = None,
    full: bool = False,
    partial: bool | None = None,
    diff: bool = False,
    record: dict | None = None,
) -> RunSpec:
    """The RunSpec of a run, with PRODUCTSYNC's defaults (SOURCE, BATCH_SIZE or for a partial
    run PARTIAL_BATCH_SIZE, HIDE_MISSING, WORKERS). feed_options are FeedOptions fields
    (format, delimiter, encoding, mapping).
    resume is the id of an aborted or failed run to continue: the spec reads the same source
    from its first uncommitted batch. partial (default PRODUCTSYNC['PARTIAL']; also a stock
    file's partner, PRODUCTSYNC['PARTNER'], or a mapping declaring it; a retry or a resumed
    run as its original) makes the run's items partial. Raises SourceError without a source,
    ProductSyncError for options out of range or a run that cannot be resumed. diff: a dry run
    records each item's changed fields (every dry run records each item's outcome, and a real
    run the changed fields of its updated items). record: more SyncRun fields to record at its
    start (the admin's uploaded file, the preview a run confirms)."""
    workers = workers or app_settings.WORKERS
    resumed_from, start = None, 0
    if resume is not None:
        resumed_from, start = _resume_point(resume, source)
        source, batch_size = resumed_from.source, batch_size or resumed_from.batch_size
    source = app_settings.SOURCE if source is None else source
    if hide_missing is None:
        hide_missing = app_settings.HIDE_MISSING
    if not source or not source.strip():
        raise SourceError("no source given and PRODUCTSYNC['SOURCE'] is not set")
    given, source = source, source_key(source)
    if workers not in SyncRun.Workers.values:
        raise ProductSyncError(f"workers must be one of {', '.join(SyncRun.Workers.values)}")
    if dry_run and workers == SyncRun.Workers.QUEUE:
        raise ProductSyncError("a dry run is local: it cannot use --workers queue")
    try:
        options = FeedOptions(**(feed_options or {}))
    except TypeError as exc:
        raise ProductSyncError(f"bad feed options: {exc}") from None
    options = source_options(given, options)
    if options.partner is None and app_settings.PARTNER:
        options = dataclasses.replace(options, partner=app_settings.PARTNER)
    original = resumed_from or retry_of
    if original is not None:
        partial = original.partial
    elif partial is None:
        partial = app_settings.PARTIAL
    partial = bool(partial or feed_partial(options))
    options = dataclasses.replace(options, partial=partial)
    batch_size = batch_size or (
        app_settings.PARTIAL_BATCH_SIZE if partial else app_settings.BATCH_SIZE
    )
    if not 1 <= batch_size <= MAX_BATCH_SIZE or (limit is not None and limit < 0):
        raise ProductSyncError(
            f"batch size must be from 1 to {MAX_BATCH_SIZE} and limit at least 0"
        )
    return RunSpec(
        source=source,
        batch_size=batch_size,
        dry_run=dry_run,
        limit=limit,
        trigger=trigger,
        hide_missing=hide_missing,
        feed=options,
        workers=workers,
        full=full,
        retry_of=retry_of,
        open_feed=open_feed,
        resumed_from=resumed_from,
        start=start,
        partial=partial,
        diff=diff and dry_run,
        record=dict(record or {}),
    )
