"""Errors raised by productsync; callers handle each subclass differently."""


class ProductSyncError(Exception):
    """Base class of every productsync error."""


class SourceError(ProductSyncError):
    """The feed cannot be opened at all (missing file, refused connection, unknown format)."""


class FeedError(ProductSyncError):
    """The feed broke part-way (truncated or malformed); batches before the break stand."""


class RecordError(ProductSyncError):
    """One feed item is invalid; the message names the field."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class RunActiveError(ProductSyncError):
    """Another non-dry run of the same source is active."""


class QueueError(ProductSyncError):
    """No django-q2 cluster is running to take a queued sync."""


class LeaseLostError(RunActiveError):
    """This run was taken for dead and marked aborted while it worked; it stops at once."""
