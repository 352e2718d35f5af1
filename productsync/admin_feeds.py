"""The Feeds page of the admin, a shop team's console: each feed's kind, source, last run,
next scheduled run and overdue mark; Sync now, Preview, Enable/Disable and a new push token;
a feed's page with its recent runs and alerts."""

from urllib.parse import urlencode, urlsplit, urlunsplit

from django import forms
from django.contrib import admin, messages
from django.db.models import Max, OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from productsync.admin_import import message_html
from productsync.exceptions import ProductSyncError, QueueError
from productsync.feed_models import Alert, Feed
from productsync.models import SyncRun
from productsync.services import (
    feed_next_runs,
    feed_sync_enqueue,
    feed_token_rotate,
    is_url,
    url_host_allowed,
)

RUN_PERMISSION = "productsync.run_sync"
RECENT_RUNS = 20
RECENT_ALERTS = 20


def source_shown(source: str) -> str:
    """A source as the console shows it: a URL without user name, password or query (where
    tokens hide)."""
    if not is_url(source):
        return source
    parts = urlsplit(source)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


# A feed's page, by section: the form's fields and the admin's fieldsets, in this order.
FEED_SECTIONS = [
    (None, ["name", "enabled", "kind", "partner"]),
    ("Source", ["source", "credentials", "archive_to", "format", "sheet", "preset", "mapping"]),
    (
        "Runs",
        ["schedule", "batch_size", "hide_missing", "only", "allow_mass_change", "owns"]
        + ["stock_authoritative", "max_failures"],
    ),
    ("Alerts", ["alert_emails", "alert_webhook", "overdue_after"]),
]
READ_ONLY = ["incident", "incident_since"]


class FeedForm(forms.ModelForm):
    """A feed entered in the admin: its URLs reach private or loopback hosts only through
    PRODUCTSYNC['ALLOW_PRIVATE']."""

    alert_webhook = forms.URLField(
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text=Feed._meta.get_field("alert_webhook").help_text,
    )

    class Meta:
        model = Feed
        fields = [name for _, names in FEED_SECTIONS for name in names]

    def _public(self, name: str) -> str:
        value = self.cleaned_data.get(name) or ""
        if is_url(value) and not url_host_allowed(value):
            raise forms.ValidationError(
                "This host is private or loopback: only hosts listed in "
                "PRODUCTSYNC['ALLOW_PRIVATE'] may be."
            )
        return value

    def clean_source(self) -> str:
        return self._public("source")

    def clean_alert_webhook(self) -> str:
        return self._public("alert_webhook")


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    form = FeedForm
    list_display = [
        "name",
        "kind",
        "source_cut",
        "enabled",
        "schedule",
        "last_run",
        "next_run",
        "health",
    ]
    list_filter = ["kind", "enabled", "incident"]
    search_fields = ["name", "source", "partner"]
    actions = ["sync_now", "preview", "enable", "disable", "new_push_token"]
    change_form_template = "admin/productsync/feed/change_form.html"
    readonly_fields = [*READ_ONLY, "created_at"]
    fieldsets = [
        (title, {"fields": names + (READ_ONLY if title == "Alerts" else [])})
        for title, names in FEED_SECTIONS
    ]

    class Media:
        css = {"all": ["productsync/admin.css"]}

    def get_queryset(self, request):
        """Each feed with its last real run and last success, in the list's one query."""
        runs = SyncRun.objects.filter(feed=OuterRef("pk"), dry_run=False)
        newest = runs.exclude(status=SyncRun.Status.QUEUED).order_by("-started_at", "-pk")
        annotations = {
            f"last_{name}": Subquery(newest.values(name)[:1])
            for name in ("pk", "status", "items", "created", "updated", "failed")
        }
        success = runs.filter(status=SyncRun.Status.SUCCEEDED).order_by("-finished_at")
        annotations["last_success"] = Subquery(success.values("finished_at")[:1])
        return super().get_queryset(request).annotate(**annotations)

    def changelist_view(self, request, extra_context=None):
        self.next_runs = feed_next_runs()  # one query for the page's "next run" column
        return super().changelist_view(request, extra_context)

    @admin.display(description="source", ordering="source")
    def source_cut(self, feed: Feed) -> str:
        shown = source_shown(feed.source)
        tail = shown.rstrip("/").rsplit("/", 1)[-1] or shown
        return format_html('<span title="{}">{}</span>', shown, tail or "pushed")

    @admin.display(description="last run")
    def last_run(self, feed: Feed) -> str:
        if not getattr(feed, "last_pk", None):
            return "–"
        url = reverse("admin:productsync_syncrun_change", args=[feed.last_pk])
        return format_html(
            '<a href="{}"><span class="ps-badge ps-{}">{}</span></a> {} items: {} created, '
            "{} updated, {} failed",
            url,
            feed.last_status,
            feed.last_status,
            feed.last_items,
            feed.last_created,
            feed.last_updated,
            feed.last_failed,
        )

    @admin.display(description="next run")
    def next_run(self, feed: Feed) -> str:
        when = getattr(self, "next_runs", {}).get(feed.name)
        return timezone.localtime(when).strftime("%Y-%m-%d %H:%M") if when else "–"

    @admin.display(description="health")
    def health(self, feed: Feed) -> str:
        overdue = feed_overdue(feed)
        if overdue:
            return format_html('<span class="ps-badge ps-failed ps-overdue">{}</span>', "overdue")
        if feed.incident:
            return format_html(
                '<span class="ps-badge ps-partial">{}</span>', feed.get_incident_display()
            )
        return "ok"

    # Actions: a run needs run_sync besides the feed's view permission; the rest change it.

    def _can_run(self, request) -> bool:
        return request.user.has_perm(RUN_PERMISSION)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self._can_run(request):
            actions.pop("sync_now", None)
            actions.pop("preview", None)
        if not self.has_change_permission(request):
            for name in ("enable", "disable", "new_push_token"):
                actions.pop(name, None)
        return actions

    def _enqueue(self, request, queryset, dry_run: bool):
        after = SyncRun.objects.aggregate(last=Max("pk"))["last"] or 0
        queued = None
        for feed in queryset:
            try:
                queued = feed_sync_enqueue(feed, dry_run=dry_run)
            except (QueueError, ProductSyncError) as exc:
                messages.error(request, message_html(f"Feed {feed.name}: not started: {exc}."))
                continue
            what = "preview" if dry_run else "sync"
            messages.success(request, f"Feed {feed.name}: {what} queued.")
        if queued is not None and queryset.count() == 1:
            url = reverse("admin:productsync_syncrun_queued", args=[queued.task_id])
            return HttpResponseRedirect(
                f"{url}?{urlencode({'after': after, 'dry_run': int(dry_run)})}"
            )
        return None

    @admin.action(description="Sync now")
    def sync_now(self, request, queryset):
        return self._enqueue(request, queryset, dry_run=False)

    @admin.action(description="Preview (change nothing)")
    def preview(self, request, queryset):
        return self._enqueue(request, queryset, dry_run=True)

    @admin.action(description="Enable")
    def enable(self, request, queryset):
        self._enabled_set(queryset, True)
        messages.success(request, f"{queryset.count()} enabled; their schedules run again.")

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        self._enabled_set(queryset, False)
        messages.success(request, f"{queryset.count()} disabled; their schedules paused.")

    @staticmethod
    def _enabled_set(queryset, enabled: bool) -> None:
        # One save per feed: saving a feed keeps its django-q2 schedule in step.
        for feed in queryset:
            feed.enabled = enabled
            feed.save(update_fields=["enabled"])

    @admin.action(description="New push token (shown once)")
    def new_push_token(self, request, queryset):
        for feed in queryset:
            token = feed_token_rotate(feed)
            url = request.build_absolute_uri(reverse("productsync:feed_push", args=[feed.name]))
            messages.warning(
                request,
                f"Feed {feed.name}: push token {token} (shown this once; the earlier one no longer "
                f"works). POST the file to {url} with Authorization: Bearer <token>.",
            )

    # The feed's page: its recent runs and alerts below the form.

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        feed = self.get_object(request, object_id)
        if feed is not None:
            extra["recent_runs"] = list(feed.run_set.order_by("-started_at", "-pk")[:RECENT_RUNS])
            extra["recent_alerts"] = list(
                Alert.objects.filter(feed=feed).select_related("run")[:RECENT_ALERTS]
            )
            extra["source_shown"] = source_shown(feed.source)
        return super().change_view(request, object_id, form_url, extra)


def feed_overdue(feed: Feed) -> bool:
    """An enabled feed with overdue_after whose last success (else creation) is older."""
    if not feed.enabled or feed.overdue_after is None:
        return False
    since = getattr(feed, "last_success", None) or feed.created_at
    return timezone.now() - since > feed.overdue_after
