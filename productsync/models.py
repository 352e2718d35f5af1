"""Run history (SyncRun, SyncBatch, SyncFailure), the sync state, feeds (from feed_models)."""

from django.db import models
from django.db.models import Case, F, Q, When
from django.db.models.functions import Cast, Length
from django.utils import timezone

from productsync.feed_models import ONLY_CHOICES, Alert, Feed  # noqa: F401  (this app's models too)
from productsync.state_models import SyncedProduct  # noqa: F401


class SyncRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        # Some items failed, the rest were written. Not "partial": that is a kind of feed.
        COMPLETED_WITH_FAILURES = "completed_with_failures", "completed with failures"
        FAILED = "failed", "failed"
        ABORTED = "aborted", "aborted"
        SKIPPED = "skipped", "skipped"
        QUEUED = "queued", "queued"  # a pushed file's run, until a worker starts it

    class Trigger(models.TextChoices):
        COMMAND = "command", "command"
        SCHEDULE = "schedule", "schedule"
        ADMIN = "admin", "admin"
        PUSH = "push", "push"

    class Workers(models.TextChoices):
        LOCAL = "local", "local"
        QUEUE = "queue", "queue"

    source = models.CharField("source", max_length=2000, help_text="Feed path or URL.")
    feed = models.ForeignKey(Feed, models.SET_NULL, null=True, blank=True, related_name="run_set")
    trigger = models.CharField(
        "trigger", max_length=16, choices=Trigger.choices, default=Trigger.COMMAND
    )
    status = models.CharField(
        "status", max_length=32, choices=Status.choices, default=Status.RUNNING, db_index=True
    )
    batch_size = models.PositiveIntegerField("batch size")
    dry_run = models.BooleanField(
        "dry run", default=False, help_text="Every batch was rolled back after writing."
    )
    # A stock run's partner, the only one whose stock records it writes; whether the
    # feed's stock levels overwrote the shop's whenever an item was written.
    partner = models.CharField("partner", max_length=128, blank=True, default="")
    stock_authoritative = models.BooleanField("stock authoritative", default=False)
    # Let through a mass change (services.guard); which items it writes: all, new products
    # only, existing ones only; compared every product with its item by value (--compare).
    allow_mass_change = models.BooleanField("mass change allowed", default=False)
    only = models.CharField("only", max_length=8, blank=True, default="", choices=ONLY_CHOICES)
    compare = models.BooleanField("compared by value", default=False)
    # The fields the run wrote, comma-separated, and no other (empty: all).
    owns = models.CharField("owns", max_length=300, blank=True, default="")
    partial = models.BooleanField(
        "partial",
        default=False,
        help_text="Items carried only what they change (a stock file): nothing was created "
        "or hidden.",
    )
    started_at = models.DateTimeField("started", default=timezone.now, db_index=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        "heartbeat", default=timezone.now, help_text="Last sign of life of the running process."
    )
    items = models.PositiveIntegerField("items", default=0, help_text="Feed items processed.")
    created = models.PositiveIntegerField("created", default=0)
    updated = models.PositiveIntegerField("updated", default=0)
    unchanged = models.PositiveIntegerField("unchanged", default=0)
    repaired = models.PositiveIntegerField(
        "repaired",
        default=0,
        help_text="Unchanged items whose products someone had changed since the last sync "
        "wrote them: written again.",
    )
    failed = models.PositiveIntegerField("failed", default=0)
    hidden = models.PositiveIntegerField(
        "hidden",
        default=0,
        help_text="Products set non-public because they left the feed (never deleted).",
    )
    batches = models.PositiveIntegerField("batches", default=0)
    failed_batches = models.PositiveIntegerField(
        "batches with failed items",
        default=0,
        help_text="Batches with at least one failed item (partial or failed batches).",
    )
    warnings = models.PositiveIntegerField(
        "warnings",
        default=0,
        help_text="Items with keys the feed format does not know, and images not fetched.",
    )
    total_items = models.PositiveIntegerField(
        "total items", null=True, blank=True, help_text="Items in the feed, when known upfront."
    )
    bytes_read = models.PositiveBigIntegerField("bytes read", default=0)
    bytes_total = models.PositiveBigIntegerField("bytes total", null=True, blank=True)
    error = models.TextField("error", blank=True, help_text="Why the run stopped early.")
    image_failures = models.JSONField(
        "images not fetched",
        default=dict,
        blank=True,
        help_text="Images not fetched: counts by kind of failure, the first few named.",
    )
    notes = models.JSONField(
        "notes", default=list, blank=True, help_text="Warnings and remarks, one string each."
    )
    http_etag = models.CharField(
        "HTTP ETag",
        max_length=1000,
        blank=True,
        help_text="ETag of an HTTP source's response, sent as If-None-Match next time.",
    )
    http_last_modified = models.CharField(
        "HTTP Last-Modified",
        max_length=100,
        blank=True,
        help_text="Last-Modified of an HTTP source's response, sent as If-Modified-Since.",
    )
    feed_digest = models.CharField(
        "feed digest",
        max_length=64,
        blank=True,
        help_text="SHA-256 of a local feed file and the settings a succeeded run read it "
        "with: the next run of the same file skips it while the products are unchanged.",
    )
    # The source's synced products after a run that stored feed_digest, compared by the
    # next run of an unchanged feed file.
    state_run = models.PositiveIntegerField(
        "state: reading run",
        null=True,
        blank=True,
        help_text="The run that last read the feed of the source's synced products.",
    )
    state_count = models.PositiveIntegerField(
        "state: products", null=True, blank=True, help_text="The source's synced products."
    )
    state_changed = models.DateTimeField(
        "state: last change",
        null=True,
        blank=True,
        help_text="When one of the source's synced products last changed.",
    )
    unknown_keys = models.JSONField(
        "unknown keys",
        default=list,
        blank=True,
        help_text="Item keys the feed format does not know that the run met (and noted).",
    )
    retry_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retries",
        verbose_name="retry of",
        help_text="The run whose failed items this run's feed consists of.",
    )
    owner = models.CharField(
        "owner", max_length=255, blank=True, help_text="host:pid of the process that ran it."
    )
    workers = models.CharField(
        "workers",
        max_length=16,
        choices=Workers.choices,
        default=Workers.LOCAL,
        help_text="local: this process writes every batch; queue: django-q2 workers do.",
    )
    planned_batches = models.PositiveIntegerField(
        "planned batches",
        null=True,
        blank=True,
        help_text="Queue runs: batches enqueued, set once the whole feed was read.",
    )
    start_position = models.PositiveIntegerField(
        "start position", default=0, help_text="Feed position of the first item it read."
    )
    resumed_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="resumed_by",
        verbose_name="resumed from",
        help_text="The aborted or failed run this one continues.",
    )

    # The admin's import tool: an uploaded or fetched feed file kept with the run,
    # the preview it confirms, and the item rows (SyncItem) it recorded.
    upload = models.CharField(
        "uploaded feed",
        max_length=500,
        blank=True,
        help_text="Storage name of the feed file given in the admin, kept with the run.",
    )
    upload_name = models.CharField("file name", max_length=255, blank=True)
    upload_sha256 = models.CharField(
        "file SHA-256",
        max_length=64,
        blank=True,
        help_text="Digest of the uploaded file when it was stored: confirming its preview "
        "syncs it only while it is the same.",
    )
    # Its mapping file's: a preview is confirmed only while the mapping is the same.
    mapping_sha256 = models.CharField("mapping SHA-256", max_length=64, blank=True)
    feed_options = models.JSONField(
        "feed options", default=dict, blank=True, help_text="format, mapping: how it was read."
    )
    preview_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="confirmed_by",
        verbose_name="confirms",
        help_text="The preview (dry run) whose file this run synced.",
    )
    diff = models.BooleanField(
        "changes recorded",
        default=False,
        help_text="A preview: every item's outcome with its changed fields.",
    )
    item_rows = models.PositiveIntegerField(
        "item rows", default=0, help_text="Items recorded with their outcome or changes."
    )
    # The key of the admin's queued task that started it: the page waiting for it finds it.
    queued_as = models.CharField("queued as", max_length=32, blank=True, db_index=True)

    # Starting, retrying and confirming a sync (with the view permission: see the admin).
    RUN_PERMISSION = "productsync.run_sync"

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = "sync run"
        permissions = [("run_sync", "Can start or retry a product sync")]
        constraints = [
            # The lease: one active non-dry run per source, enforced by the database.
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(status="running", dry_run=False),
                name="productsync_one_active_run_per_source",
            )
        ]

    # The counters a run reports (the command's summary, the admin's live progress).
    COUNTERS = ("items", "created", "updated", "unchanged", "repaired", "failed", "hidden")
    COUNTERS += ("warnings", "batches", "failed_batches")

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"


class SyncBatch(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        PARTIAL = "partial", "with failures"
        FAILED = "failed", "failed"

    # The outcome counts of a batch, as BatchResult has them.
    COUNTERS = ("items", "created", "updated", "unchanged", "repaired", "failed", "hidden")

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="batch_set")
    number = models.PositiveIntegerField("number", help_text="1-based, in feed order.")
    first_position = models.PositiveIntegerField("first position")
    last_position = models.PositiveIntegerField("last position")
    status = models.CharField("status", max_length=16, choices=Status.choices)
    items = models.PositiveIntegerField("items", default=0)
    created = models.PositiveIntegerField("created", default=0)
    updated = models.PositiveIntegerField("updated", default=0)
    unchanged = models.PositiveIntegerField("unchanged", default=0)
    repaired = models.PositiveIntegerField("repaired", default=0)
    failed = models.PositiveIntegerField("failed", default=0)
    hidden = models.PositiveIntegerField(
        "hidden", default=0, help_text="Children hidden because they left their parent's item."
    )
    duration = models.FloatField("duration (s)", default=0)
    error = models.TextField("error", blank=True, help_text="Why the batch was retried by item.")
    finished_at = models.DateTimeField("finished", default=timezone.now, null=True, blank=True)
    # Queue runs only: the batch waits in the database for a django-q2 worker.
    payload = models.JSONField(
        "payload",
        null=True,
        blank=True,
        help_text="Queue runs: the batch's raw items as [position, item] pairs until written.",
    )
    attempts = models.PositiveIntegerField(
        "attempts", default=0, help_text="Times a worker claimed it."
    )
    claimed_by = models.CharField(
        "claimed by", max_length=255, blank=True, help_text="host:pid:token of its worker."
    )
    heartbeat_at = models.DateTimeField(
        "heartbeat",
        null=True,
        blank=True,
        help_text="When it was last enqueued or claimed; a stale one is enqueued again.",
    )

    class Meta:
        ordering = ["run", "number"]
        verbose_name = "sync batch"
        verbose_name_plural = "sync batches"
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="productsync_batch_number")
        ]
        indexes = [models.Index(fields=["run", "status"], name="productsync_batch_status")]

    def __str__(self) -> str:
        return f"Batch {self.number} of run {self.run_id}"


class SyncFailure(models.Model):
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="failure_set")
    batch = models.ForeignKey(
        SyncBatch, on_delete=models.CASCADE, related_name="failure_set", null=True, blank=True
    )
    position = models.PositiveIntegerField("position", help_text="0-based index in the feed.")
    upc = models.CharField("UPC", max_length=255, blank=True)
    field = models.CharField("field", max_length=255, blank=True)
    message = models.TextField("message")
    raw_payload = models.TextField("raw payload", help_text="The item exactly as read.")
    duplicate_of = models.PositiveIntegerField(
        "duplicate of",
        null=True,
        blank=True,
        help_text="Position of the earlier item of the feed with the same UPC, when that is "
        "why it failed: a retry writes it only when asked.",
    )

    class Meta:
        ordering = ["run", "position"]
        verbose_name = "sync failure"
        indexes = [models.Index(fields=["run", "position"], name="productsync_failure_pos")]

    def __str__(self) -> str:
        return f"Item {self.position} of run {self.run_id}"


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= SyncItem.SHOWN else text[: SyncItem.SHOWN - 1] + "…"


def _kept(value):
    """A changed value as a row keeps it: whole when its text is short, else its first
    characters (a list or table as its text), enough for what the page shows."""
    if isinstance(value, str):
        return value if len(value) <= SyncItem.KEPT else value[: SyncItem.KEPT - 1] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    text = repr(value)
    return value if len(text) <= SyncItem.KEPT else text[: SyncItem.KEPT - 1] + "…"


CODES_CHARS = 1000


class SyncItem(models.Model):
    """What one item did or would do: every item of a dry run (with its changed fields in a
    preview), and the updated items of a real run with their changed fields."""

    class Outcome(models.TextChoices):
        CREATED = "created", "created"
        UPDATED = "updated", "updated"
        UNCHANGED = "unchanged", "unchanged"
        FAILED = "failed", "failed"
        # A child of an item of a dry run: its upc, so later batches find it taken.
        MEMBER = "member", "child"

    # Characters of a value shown on the page; the row keeps a few more (a 4 MiB description
    # is kept as its start, so a preview's rows and its page stay small).
    SHOWN = 300
    KEPT = 2 * SHOWN
    # The page reads the changes of an item up to this size; larger ones (rows written before
    # values were cut when kept) are named by their size, never loaded.
    PAGE_CHANGES_CHARS = 64 * 1024

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="item_set")
    position = models.PositiveIntegerField("position", help_text="0-based index in the feed.")
    upc = models.CharField("UPC", max_length=255, blank=True)
    outcome = models.CharField("outcome", max_length=16, choices=Outcome.choices)
    changes = models.JSONField(
        "changes",
        null=True,
        blank=True,
        help_text="[field, old value, new value] for each field the item changes.",
    )
    message = models.TextField("message", blank=True, help_text="Why it failed.")
    title = models.CharField("title", max_length=255, blank=True)
    codes = models.CharField(
        "codes",
        max_length=CODES_CHARS,
        blank=True,
        help_text="Its SKUs and its children's UPCs and SKUs (the first ones): what the "
        "preview's search finds it by, with its UPC and title.",
    )

    class Meta:
        ordering = ["run", "position"]
        verbose_name = "sync item"
        indexes = [
            models.Index(fields=["run", "outcome", "position"], name="productsync_item_outcome"),
            models.Index(fields=["run", "upc"], name="productsync_item_upc"),
        ]

    def __str__(self) -> str:
        return f"Item {self.position} of run {self.run_id}"

    def change_rows(self) -> list[tuple[str, str, str]]:
        """(field, old, new) as shown: Python literals, long values cut."""
        return [(field, _shown(old), _shown(new)) for field, old, new in self.changes or []]

    @staticmethod
    def codes_kept(codes: tuple[str, ...]) -> str:
        """The codes as a row keeps them: space-separated, the first that fit."""
        text = " ".join(codes)
        return text if len(text) <= CODES_CHARS else text[:CODES_CHARS].rsplit(" ", 1)[0]

    @staticmethod
    def changes_kept(changes: list | None) -> list | None:
        """The changes as a row keeps them: each value cut to KEPT characters."""
        if changes is None:
            return None
        return [[field, _kept(old), _kept(new)] for field, old, new in changes]

    @classmethod
    def page_rows(cls, queryset) -> models.QuerySet:
        """The queryset reading each item's changes only up to PAGE_CHANGES_CHARS (as
        changes_shown; changes_size is the size of all of them), in the same query."""
        size = Length(Cast("changes", models.TextField()))
        return (
            queryset.defer("changes")
            .annotate(changes_size=size)
            .annotate(
                changes_shown=Case(
                    When(changes_size__lte=cls.PAGE_CHANGES_CHARS, then=F("changes")),
                    default=None,
                    output_field=models.JSONField(),
                )
            )
        )

    def page_change_rows(self) -> list[tuple[str, str, str]]:
        """change_rows of an item read by page_rows."""
        if self.changes_shown is None and self.changes_size:
            return [("(changes)", f"{self.changes_size:,} characters", "too large to show here")]
        return [(field, _shown(old), _shown(new)) for field, old, new in self.changes_shown or []]
