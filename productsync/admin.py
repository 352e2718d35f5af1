"""Read-only run history in the Django admin: the run page with its picture and live progress,
failure downloads, and starting or retrying a sync through django-q2."""

import csv
import re
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from productsync import admin_feeds  # noqa: F401  (registers the Feeds page)
from productsync.admin_import import ImportViews, message_html
from productsync.conf import app_settings
from productsync.exceptions import ProductSyncError, QueueError
from productsync.exports import Echo, failures_csv_rows, failures_jsonl
from productsync.forms import RetryForm
from productsync.models import SyncBatch, SyncFailure, SyncRun
from productsync.report import (
    duration_text,
    run_duration,
    run_picture,
    run_progress,
)
from productsync.services import (
    Queued,
    product_dashboard_urls,
    run_batch_products,
    run_failures,
    run_image_failures,
    run_mode_default,
    run_note_groups,
    sync_queue_state,
    sync_run_abort_stale,
    sync_run_enqueue,
    sync_run_enqueue_retry,
    sync_run_queued,
)

BATCHES_PER_PAGE = 50
FAILURES_PER_PAGE = 50


# Characters of a stored payload and of a message shown on a page (downloads keep them whole).
PAGE_PAYLOAD_CHARS = 2000
PAGE_TEXT_CHARS = 1000
# The largest primary key a run can have (a 64-bit BigAutoField).
MAX_RUN_ID = 2**63 - 1
# The key a queued task records on its run (see task_enqueue): a UUID's hex.
QUEUED_KEY = re.compile(r"[0-9a-f]{32}")


def _run_id(value: str) -> int:
    """A run id from a URL or query string; Http404 when it cannot be one."""
    if not value.isdigit() or int(value) > MAX_RUN_ID:
        raise Http404("no such run")
    return int(value)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ImportViews, ReadOnlyAdmin):
    # What a shop team asks first (did it work, which file, when, what changed), in columns
    # that fit a 1,400 px window with the sidebar open; the rest is on the run page.
    list_display = [
        "id",
        "status_badge",
        "source_short",
        "started_at",
        "duration",
        "items",
        "created",
        "updated",
        "failed",
    ]
    list_display_links = ["id"]
    list_filter = ["feed", "status", "trigger", "workers", "dry_run"]
    date_hierarchy = "started_at"
    search_fields = ["source", "=id"]
    change_list_template = "admin/productsync/syncrun/change_list.html"

    class Media:
        css = {"all": ["productsync/admin.css"]}

    # List columns: everything comes from the run row itself, no query per row.

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: SyncRun) -> str:
        """The status, and under it the kind of run, apart from the status."""
        return format_html(
            '<span class="ps-badge ps-{}">{}</span><br><small class="ps-kind">{}</small>',
            run.status,
            run.get_status_display(),
            self.kind(run),
        )

    @staticmethod
    def kind(run: SyncRun) -> str:
        """The kind of feed and whether anything was kept, apart from the status."""
        feed = "stock file" if run.partial else "catalogue"
        return f"{feed}, preview" if run.dry_run else feed

    @admin.display(description="source", ordering="source")
    def source_short(self, run: SyncRun) -> str:
        shown = run.upload_name or run.source.rstrip("/").rsplit("/", 1)[-1] or run.source
        return format_html('<span title="{}">{}</span>', run.source, shown)

    @admin.display(description="duration")
    def duration(self, run: SyncRun) -> str:
        return duration_text(run_duration(run))

    @admin.display(description="retry of", ordering="retry_of")
    def retry_of_link(self, run: SyncRun) -> str:
        if run.retry_of_id is None:
            return "–"
        url = reverse("admin:productsync_syncrun_change", args=[run.retry_of_id])
        return format_html('<a href="{}">run {}</a>', url, run.retry_of_id)

    # URLs of the run page, its JSON progress, downloads and the two actions.

    def get_urls(self):
        view = self.admin_site.admin_view
        name = "productsync_syncrun_"
        return [
            path("start/", view(require_POST(self.start_view)), name=name + "start"),
            path(
                "queued/<str:task_id>/",
                view(self.queued_view),
                name=name + "queued",
            ),
            path(
                "queued/<str:task_id>/status.json",
                view(self.queued_status_view),
                name=name + "queued_status",
            ),
            path("<int:run_id>/retry/", view(require_POST(self.retry_view)), name=name + "retry"),
            path("<int:run_id>/progress.json", view(self.progress_view), name=name + "progress"),
            path(
                "<int:run_id>/failures.jsonl",
                view(self.failures_jsonl_view),
                name=name + "failures_jsonl",
            ),
            path(
                "<int:run_id>/failures.csv",
                view(self.failures_csv_view),
                name=name + "failures_csv",
            ),
            path("<int:run_id>/images.txt", view(self.images_view), name=name + "images"),
            *self.import_urls(),
            *super().get_urls(),
        ]

    def _require_view(self, request) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    def _require_run(self, request) -> None:
        """Starting and retrying need both permissions (run_sync alone sees no history)."""
        if not (
            self.has_view_permission(request) and request.user.has_perm(SyncRun.RUN_PERMISSION)
        ):
            raise PermissionDenied

    def changelist_view(self, request, extra_context=None):
        sync_run_abort_stale()  # a run whose process died is listed as what it is: aborted
        extra_context = extra_context or {}
        if request.user.has_perm(SyncRun.RUN_PERMISSION):
            extra_context["queue_state"] = sync_queue_state()
            extra_context["can_run"] = True
            extra_context["sync_source"] = app_settings.SOURCE
            extra_context["sync_batch_size"] = run_mode_default().default_batch_size
        return super().changelist_view(request, extra_context)

    # The run page.

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        if run is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, run) or request.method == "POST":
            raise PermissionDenied  # history is read-only
        batches = Paginator(run.batch_set.order_by("number"), BATCHES_PER_PAGE).get_page(
            request.GET.get("batches")
        )
        # A page shows the head of each payload; the downloads have them whole.
        failures = Paginator(run_failures(run, PAGE_PAYLOAD_CHARS), FAILURES_PER_PAGE).get_page(
            request.GET.get("failures")
        )
        product_urls = product_dashboard_urls(f.upc for f in failures)
        failure_rows = [
            (f, product_urls.get(f.upc), f.batch and (f.batch.number - 1) // BATCHES_PER_PAGE + 1)
            for f in failures
        ]
        batch_rows = run_batch_products(run, list(batches))
        running = run.status == SyncRun.Status.RUNNING
        context = {
            **self.admin_site.each_context(request),
            **(extra_context or {}),
            "opts": self.opts,
            "title": f"Sync run {run.pk}",
            "run": run,
            "progress": run_progress(run),
            "note_groups": run_note_groups(run),
            "picture": self._picture_context(run),
            "batches": batches,
            "batch_rows": batch_rows,
            "failures": failures,
            "failure_rows": failure_rows,
            "retries": list(run.retries.order_by("pk").values_list("pk", "status")),
            "confirmed_by": list(run.confirmed_by.order_by("pk").values_list("pk", "status")),
            "can_retry": (
                request.user.has_perm(SyncRun.RUN_PERMISSION)
                and not running
                and not run.dry_run  # a preview is confirmed, not retried
                and run.failed > 0
            ),
            "payload_chars": PAGE_PAYLOAD_CHARS,
            "duplicate_failures": run.failure_set.exclude(duplicate_of=None).count()
            if run.failed
            else 0,
            "can_confirm": request.user.has_perm(SyncRun.RUN_PERMISSION)
            and run.dry_run
            and bool(run.upload)
            and run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.COMPLETED_WITH_FAILURES),
            **self.items_context(request, run),
            "alerts": list(run.alert_set.all()),
            "media": self.media,
        }
        return TemplateResponse(request, "admin/productsync/syncrun/run.html", context)

    @staticmethod
    def _picture_context(run: SyncRun) -> dict:
        bars = run_picture(run)
        return {
            "bars": [(bar, (bar.first_batch - 1) // BATCHES_PER_PAGE + 1) for bar in bars],
            "run": run,
        }

    # Live progress, polled by the run page while the run is running.

    def progress_view(self, request, run_id: int):
        self._require_view(request)
        run = get_object_or_404(SyncRun, pk=_run_id(str(run_id)))
        data = run_progress(run)
        data["picture"] = render_to_string(
            "admin/productsync/syncrun/picture.html", self._picture_context(run), request
        )
        return JsonResponse(data)

    # Downloads of the failed items, in our feed formats.

    def failures_jsonl_view(self, request, run_id: int):
        self._require_view(request)
        run = get_object_or_404(SyncRun, pk=_run_id(str(run_id)))
        response = StreamingHttpResponse(
            failures_jsonl(run.pk), content_type="application/x-ndjson; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-failures.jsonl"'
        return response

    def failures_csv_view(self, request, run_id: int):
        self._require_view(request)
        run = get_object_or_404(SyncRun, pk=_run_id(str(run_id)))
        writer = csv.writer(Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in failures_csv_rows(run.pk)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-failures.csv"'
        return response

    def images_view(self, request, run_id: int):
        """Every image the run did not fetch, as kept, one line each (the page names a few)."""
        self._require_view(request)
        run = get_object_or_404(SyncRun, pk=_run_id(str(run_id)))
        lines = run_image_failures(run)
        response = HttpResponse(
            "".join(f"{line}\n" for line in lines), content_type="text/plain; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-images.txt"'
        return response

    # Starting and retrying, through the django-q2 cluster.

    def _queued_redirect(self, request, queued: Queued):
        """To the page that waits for the run of the queued task."""
        if queued.state == "unknown":
            messages.warning(
                request,
                "Queued, but this server cannot tell whether a django-q2 cluster is running "
                "(its status cache is not shared with the web server); the sync starts when "
                "a cluster takes it.",
            )
        url = reverse("admin:productsync_syncrun_queued", args=[queued.task_id])
        return HttpResponseRedirect(f"{url}?{urlencode({'run': queued.key})}")

    def start_view(self, request):
        self._require_run(request)
        dry_run = request.POST.get("dry_run") == "on"
        try:
            queued = sync_run_enqueue(dry_run=dry_run)
        except QueueError as exc:
            messages.error(request, message_html(f"Not started: {exc}."))
            return HttpResponseRedirect(reverse("admin:productsync_syncrun_changelist"))
        return self._queued_redirect(request, queued)

    def retry_view(self, request, run_id: int):
        self._require_run(request)
        run = get_object_or_404(SyncRun, pk=_run_id(str(run_id)))
        page = reverse("admin:productsync_syncrun_change", args=[run.pk])
        if run.status == SyncRun.Status.RUNNING or not run.failed or run.dry_run:
            messages.error(
                request, "Only a finished run with failed items can be retried, not a preview."
            )
            return HttpResponseRedirect(page)
        form = RetryForm(request.POST)
        duplicates = form.is_valid() and form.cleaned_data["duplicates"]
        try:
            queued = sync_run_enqueue_retry(run.pk, duplicates=duplicates)
        except (QueueError, ProductSyncError) as exc:
            messages.error(request, message_html(f"Not retried: {exc}."))
            return HttpResponseRedirect(page)
        return self._queued_redirect(request, queued)

    def _queued_run(self, request, task_id: str) -> tuple[SyncRun | None, str]:
        """The run a queued task started, or why none will come (see sync_run_queued)."""
        key = request.GET.get("run", "")
        if not QUEUED_KEY.fullmatch(key):
            raise Http404("bad query")
        return sync_run_queued(task_id, key)

    def queued_view(self, request, task_id: str):
        self._require_view(request)
        run, error = self._queued_run(request, task_id)
        if run is not None:
            return HttpResponseRedirect(reverse("admin:productsync_syncrun_change", args=[run.pk]))
        status_url = reverse("admin:productsync_syncrun_queued_status", args=[task_id])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Sync queued",
            "task_id": task_id,
            "error": error,
            "status_url": f"{status_url}?{request.GET.urlencode()}",
            "media": self.media,
        }
        return TemplateResponse(request, "admin/productsync/syncrun/queued.html", context)

    def queued_status_view(self, request, task_id: str):
        self._require_view(request)
        run, error = self._queued_run(request, task_id)
        url = reverse("admin:productsync_syncrun_change", args=[run.pk]) if run else None
        return JsonResponse({"run_url": url, "error": error})


@admin.register(SyncBatch)
class SyncBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "run",
        "number",
        "status",
        "items",
        "created",
        "updated",
        "failed",
        "hidden",
        "duration_shown",
        "attempts",
        "claimed_by",
    ]

    @admin.display(description="duration", ordering="duration")
    def duration_shown(self, batch: SyncBatch) -> str:
        return duration_text(batch.duration)

    list_filter = ["status"]
    list_select_related = ["run"]


@admin.register(SyncFailure)
class SyncFailureAdmin(ReadOnlyAdmin):
    list_display = ["run", "position", "upc", "message_head"]
    list_select_related = ["run"]
    search_fields = ["upc", "message"]

    @admin.display(description="message", ordering="message")
    def message_head(self, failure: SyncFailure) -> str:
        return Truncator(failure.message).chars(PAGE_TEXT_CHARS)
