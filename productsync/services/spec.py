"""A run's options: defaulted and validated once, then passed inward as one frozen RunSpec."""

from collections.abc import Callable
from dataclasses import dataclass, field

from productsync.conf import MAX_BATCH_SIZE, app_settings
from productsync.exceptions import ProductSyncError, SourceError
from productsync.feeds import Feed, FeedOptions
from productsync.models import SyncRun
from productsync.services.resume import _resume_point


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
    # A dry run records every item's outcome; with diff, also its changed fields (a preview).
    diff: bool = False
    # More SyncRun fields recorded at its start: the admin's uploaded file, its preview.
    record: dict = field(default_factory=dict)

    @property
    def whole_file(self) -> bool:
        """Whether the run reads its source's whole feed, as itself."""
        return not (
            self.dry_run
            or self.open_feed
            or self.limit is not None
            or self.resumed_from is not None
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
    diff: bool = False,
    record: dict | None = None,
) -> RunSpec:
    """The RunSpec of a run, with PRODUCTSYNC's defaults (SOURCE, BATCH_SIZE, HIDE_MISSING,
    WORKERS). feed_options are FeedOptions fields (format, delimiter, encoding, mapping).
    resume is the id of an aborted or failed run to continue: the spec reads the same source
    from its first uncommitted batch. Raises SourceError without a source, ProductSyncError
    for options out of range or a run that cannot be resumed. diff: a dry run records each
    item's changed fields (every dry run records each item's outcome, and a real run the
    changed fields of its updated items). record: more SyncRun fields to record at its start
    (the admin's uploaded file, the preview a run confirms)."""
    workers = workers or app_settings.WORKERS
    resumed_from, start = None, 0
    if resume is not None:
        resumed_from, start = _resume_point(resume, source)
        source, batch_size = resumed_from.source, batch_size or resumed_from.batch_size
    source = source or app_settings.SOURCE
    if hide_missing is None:
        hide_missing = app_settings.HIDE_MISSING
    batch_size = batch_size or app_settings.BATCH_SIZE
    if not source:
        raise SourceError("no source given and PRODUCTSYNC['SOURCE'] is not set")
    if not 1 <= batch_size <= MAX_BATCH_SIZE or (limit is not None and limit < 0):
        raise ProductSyncError(
            f"batch size must be from 1 to {MAX_BATCH_SIZE} and limit at least 0"
        )
    if workers not in SyncRun.Workers.values:
        raise ProductSyncError(f"workers must be one of {', '.join(SyncRun.Workers.values)}")
    if dry_run and workers == SyncRun.Workers.QUEUE:
        raise ProductSyncError("a dry run is local: it cannot use --workers queue")
    try:
        options = FeedOptions(**(feed_options or {}))
    except TypeError as exc:
        raise ProductSyncError(f"bad feed options: {exc}") from None
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
        diff=diff and dry_run,
        record=dict(record or {}),
    )
