"""Feeds a shop team runs (Feed) and the alerts sent about them (Alert); re-exported by
productsync.models, beside the run history they point into."""

from croniter import croniter
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, validate_email
from django.db import models
from django.utils import timezone

from productsync.conf import app_settings, failures_limit
from productsync.exceptions import ProductSyncError
from productsync.ownership import owns_parse

# A feed's name is part of URLs (its push endpoint) and of its django-q2 schedule's name.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
FEED_FORMATS = ("json", "jsonl", "csv", "oscar-csv", "xml", "xlsx")
FEED_PRESETS = ("shopify", "woocommerce", "magento", "google")
# Which items a run writes: every one (""), new products only, existing products only.
ONLY_CHOICES = [("create", "create: new products only"), ("update", "update: existing only")]


def cron_validate(value: str) -> None:
    if value and not croniter.is_valid(value):
        raise ValidationError(f"{value!r} is not a cron expression (e.g. '*/15 * * * *')")


def emails_validate(value: str) -> None:
    for address in emails_split(value):
        validate_email(address)


def emails_split(value: str) -> list[str]:
    """The addresses of a comma- or line-separated list."""
    return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]


class Feed(models.Model):
    """A feed the shop syncs: where it comes from, how to read it, what kind of run it makes,
    when it runs and whom to tell when it goes wrong."""

    class Kind(models.TextChoices):
        CATALOGUE = "catalogue", "catalogue (full items, may create and hide)"
        PARTIAL = "partial", "partial (items change only what they give)"
        STOCK = "stock", "stock file of one partner"

    class Incident(models.TextChoices):
        NONE = "", "healthy"
        FAILED = "failed", "run failed"
        FAILED_ITEMS = "failed_items", "run with failed items"
        OVERDUE = "overdue", "overdue"

    name = models.CharField(
        "name",
        max_length=100,
        unique=True,
        validators=[RegexValidator(NAME_PATTERN, "Letters, digits, '.', '_' and '-' only.")],
        help_text="Letters, digits, '.', '_', '-': used in its push URL and its schedule.",
    )
    source = models.CharField(
        "source",
        max_length=2000,
        blank=True,
        help_text="A path or URL the feed is read from; empty for a feed that is only pushed.",
    )
    format = models.CharField(
        "format",
        max_length=16,
        blank=True,
        choices=[(f, f) for f in FEED_FORMATS],
        help_text="Empty: told from the name and content.",
    )
    preset = models.CharField(
        "preset",
        max_length=32,
        blank=True,
        choices=[(p, p) for p in FEED_PRESETS],
        help_text="A platform's export, read with the mapping productsync ships for it.",
    )
    mapping = models.TextField(
        "mapping",
        blank=True,
        help_text="A mapping (TOML or JSON) for a feed in a foreign shape, stored with the feed.",
    )
    kind = models.CharField("kind", max_length=16, choices=Kind.choices, default=Kind.CATALOGUE)
    partner = models.CharField(
        "partner",
        max_length=128,
        blank=True,
        help_text="A stock file's partner: the stock records its rows (sku, price, "
        "num_in_stock) belong to.",
    )
    batch_size = models.PositiveIntegerField(
        "batch size", null=True, blank=True, help_text="Empty: the kind's default."
    )
    stock_authoritative = models.BooleanField(
        "stock authoritative",
        default=False,
        help_text="Each run sets stock levels to the feed's, units that orders consumed "
        "since included; else a level is written only when the feed's value for it changes.",
    )
    max_failures = models.CharField(
        "max failures",
        max_length=8,
        blank=True,
        help_text="Stop a run, failed, once more items failed than this: a number (50) or a "
        "percentage of the items read (10%); empty: PRODUCTSYNC['MAX_FAILURES'].",
    )
    owns = models.CharField(
        "owns",
        max_length=300,
        blank=True,
        help_text="The fields the feed owns, comma-separated (price, num_in_stock): its runs "
        "write those and nothing else. Empty: every field its items carry.",
    )
    schedule = models.CharField(
        "schedule",
        max_length=100,
        blank=True,
        help_text="A cron expression ('0 2 * * *': at 02:00); empty: no schedule.",
    )
    hide_missing = models.BooleanField(
        "hide missing",
        default=False,
        help_text="A complete run hides the feed's products it no longer has (catalogue).",
    )
    allow_mass_change = models.BooleanField(
        "allow mass change",
        default=False,
        help_text="Let through a run that clears, zeroes or changes one field of most of the "
        "products it matches (a deliberate repricing); else it stops before writing.",
    )
    only = models.CharField(
        "only",
        max_length=8,
        blank=True,
        choices=ONLY_CHOICES,
        help_text="Empty: create and update; create: new products only (existing ones "
        "untouched); update: existing products only (unknown ones fail).",
    )
    enabled = models.BooleanField(
        "enabled", default=True, help_text="A disabled feed has no schedule and takes no push."
    )
    credentials = models.CharField(
        "credentials",
        max_length=100,
        blank=True,
        help_text="The name of an entry of PRODUCTSYNC['CREDENTIALS'] (never the secret).",
    )
    archive_to = models.CharField(
        "archive to",
        max_length=1000,
        blank=True,
        help_text="A folder on the same SFTP, FTP or S3 server the file is moved to after a run "
        "that read it all.",
    )
    sheet = models.CharField(
        "sheet", max_length=100, blank=True, help_text="A workbook's sheet; empty: the first."
    )
    alert_emails = models.TextField(
        "alert e-mails",
        blank=True,
        help_text="Comma-separated addresses; empty: the site's ADMINS.",
    )
    alert_webhook = models.URLField(
        "alert webhook",
        max_length=2000,
        blank=True,
        help_text="An https URL that receives a signed JSON POST per alert.",
    )
    overdue_after = models.DurationField(
        "overdue after",
        null=True,
        blank=True,
        help_text="Alert when the feed has had no successful run for this long ('26:00:00').",
    )
    push_token = models.CharField(
        "push token (SHA-256)",
        max_length=64,
        blank=True,
        editable=False,
        help_text="Digest of the token an ERP pushes files with; the token is shown once.",
    )
    incident = models.CharField(
        "open incident",
        max_length=16,
        blank=True,
        choices=Incident.choices,
        default=Incident.NONE,
        editable=False,
        help_text="What was alerted and not yet recovered: one alert per incident.",
    )
    incident_since = models.DateTimeField("incident since", null=True, blank=True, editable=False)
    created_at = models.DateTimeField("created", default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "feed"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.alert_emails = ", ".join(emails_split(self.alert_emails))
        super().save(*args, **kwargs)

    def clean(self) -> None:
        # Checked here rather than as field validators: migrations stay free of this module.
        errors = _errors_of({"schedule": cron_validate, "alert_emails": emails_validate}, self)
        if self.credentials and self.credentials not in app_settings.CREDENTIALS:
            errors["credentials"] = (
                f"{self.credentials!r} is not an entry of PRODUCTSYNC['CREDENTIALS']."
            )
        if self.kind == self.Kind.STOCK and not self.partner.strip():
            errors["partner"] = "A stock file needs its partner."
        if self.kind == self.Kind.CATALOGUE and self.partner:
            errors["partner"] = "Only a stock file or a partial feed names a partner."
        if self.max_failures.strip() and failures_limit(self.max_failures.strip()) is None:
            errors["max_failures"] = "A number of items or a percentage up to 100% (50, 10%)."
        try:
            owns_parse(self.owns or None)
        except ProductSyncError as exc:
            errors["owns"] = str(exc)
        if self.owns.strip() and self.kind != self.Kind.CATALOGUE:
            errors["owns"] = (
                "Only a catalogue feed owns fields: a partial one writes what it gives."
            )
        if self.mapping and self.preset:
            errors["preset"] = "Give a mapping or a preset, not both."
        if self.hide_missing and self.kind != self.Kind.CATALOGUE:
            errors["hide_missing"] = "Only a catalogue feed hides what it no longer has."
        if self.only == "create" and self.kind != self.Kind.CATALOGUE:
            errors["only"] = "Only a catalogue feed creates products."
        if self.schedule and not self.source:
            errors["schedule"] = "A feed without a source cannot run on a schedule."
        if errors:
            raise ValidationError(errors)


def _errors_of(checks: dict, feed: "Feed") -> dict:
    errors = {}
    for name, check in checks.items():
        try:
            check(getattr(feed, name))
        except ValidationError as exc:
            errors[name] = exc.messages
    return errors


class Alert(models.Model):
    """One alert sent (or that failed to send) about a feed: by e-mail or webhook."""

    class Kind(models.TextChoices):
        FAILED = "failed", "run failed"
        FAILED_ITEMS = "failed_items", "run with failed items"
        OVERDUE = "overdue", "overdue"
        RECOVERED = "recovered", "recovered"

    class Channel(models.TextChoices):
        EMAIL = "email", "e-mail"
        WEBHOOK = "webhook", "webhook"

    feed = models.ForeignKey("productsync.Feed", on_delete=models.CASCADE, related_name="alert_set")
    run = models.ForeignKey(
        "productsync.SyncRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alert_set",
    )
    kind = models.CharField("kind", max_length=16, choices=Kind.choices)
    channel = models.CharField("channel", max_length=16, choices=Channel.choices)
    target = models.CharField(
        "to", max_length=2000, help_text="The addresses, or the webhook's host."
    )
    sent = models.BooleanField("sent", default=False)
    error = models.TextField("error", blank=True, help_text="Why it could not be sent.")
    created_at = models.DateTimeField("at", default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "alert"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} alert for {self.feed_id} ({self.channel})"
