"""A run's options: defaulted and validated once, then passed inward as one frozen RunSpec."""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from productsync.conf import MAX_BATCH_SIZE, app_settings, batch_size_allowed
from productsync.exceptions import ProductSyncError, SourceError
from productsync.feeds import Feed, FeedOptions
from productsync.models import SyncRun
from productsync.services.mode import CATALOGUE, MODES, RunMode, mode_decide
from productsync.services.resume import resume_point
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
    # What the run's kind implies (see services.mode), decided once.
    mode: RunMode = MODES[CATALOGUE]
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
            or not self.mode.may_skip_unchanged_file
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
    kind: str | None = None,
    **mode_options,
) -> RunSpec:
    """The RunSpec of a run, with PRODUCTSYNC's defaults (SOURCE, HIDE_MISSING, WORKERS; the
    batch size and all a run's kind implies from its mode, see services.mode). feed_options
    are FeedOptions fields. resume: the id of an aborted or failed run to continue from its
    first uncommitted batch, reading its source as given again (recorded without credentials)
    or as recorded. Raises SourceError without a source, ProductSyncError for options out of
    range or a run that cannot be resumed. diff: a dry run records each item's changed fields.
    record: more SyncRun fields to record at its start (the admin's upload, the preview it
    confirms). kind: a feed's, its mode whatever the settings say; mode_options: mode_decide's
    (stock_authoritative, max_failures, allow_mass_change, only, owns, compare: reads every
    item, as full)."""
    resumed_from, start = None, 0
    if resume is not None:
        resumed_from, start = resume_point(resume, source)
        source, batch_size = source or resumed_from.source, batch_size or resumed_from.batch_size
    given = app_settings.SOURCE if source is None else source
    source = _source_check(given)
    workers = _workers_check(workers or app_settings.WORKERS, dry_run)
    options = source_options(given, _feed_options(feed_options))
    original = resumed_from or retry_of
    mode = mode_decide(partial, options, original, kind, **mode_options)
    options = dataclasses.replace(options, partial=mode.partial)
    batch_size = _batch_size_check(batch_size or mode.default_batch_size, limit)
    return RunSpec(
        source=source,
        batch_size=batch_size,
        dry_run=dry_run,
        limit=limit,
        trigger=trigger,
        hide_missing=app_settings.HIDE_MISSING if hide_missing is None else hide_missing,
        feed=options,
        workers=workers,
        full=full or mode.compare,
        retry_of=retry_of,
        open_feed=open_feed,
        resumed_from=resumed_from,
        start=start,
        mode=mode,
        diff=diff and dry_run,
        record=dict(record or {}),
    )


def run_mode_default() -> RunMode:
    """The mode of a run given no options: the schedule's, the admin's "Sync now"."""
    return mode_decide(None, _feed_options(None))


def _source_check(source: str | None) -> str:
    if not source or not source.strip():
        raise SourceError("no source given and PRODUCTSYNC['SOURCE'] is not set")
    return source_key(source)


def _batch_size_check(batch_size: int, limit: int | None) -> int:
    if not batch_size_allowed(batch_size) or (limit is not None and limit < 0):
        raise ProductSyncError(
            f"batch size must be from 1 to {MAX_BATCH_SIZE} and limit at least 0"
        )
    return batch_size


def _workers_check(workers: str, dry_run: bool) -> str:
    if workers not in SyncRun.Workers.values:
        raise ProductSyncError(f"workers must be one of {', '.join(SyncRun.Workers.values)}")
    if dry_run and workers == SyncRun.Workers.QUEUE:
        raise ProductSyncError("a dry run is local: it cannot use --workers queue")
    return workers


def _feed_options(feed_options: dict | None) -> FeedOptions:
    """The feed's options, a stock file's partner defaulting to PRODUCTSYNC['PARTNER']."""
    try:
        options = FeedOptions(**(feed_options or {}))
    except TypeError as exc:
        raise ProductSyncError(f"bad feed options: {exc}") from None
    if options.partner is None and app_settings.PARTNER:
        options = dataclasses.replace(options, partner=app_settings.PARTNER)
    return options
