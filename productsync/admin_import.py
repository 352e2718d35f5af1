"""The admin as the import tool: upload a feed (or name a URL), preview it item by item with
the changed fields, confirm it, download it again, and download the catalogue as a feed."""

import csv

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from productsync.conf import app_settings
from productsync.exceptions import ProductSyncError, QueueError
from productsync.exports import Echo, catalogue_csv_rows, catalogue_jsonl
from productsync.forms import UploadForm
from productsync.models import SyncItem, SyncRun
from productsync.services import (
    SEARCH_CHARS,
    run_items,
    sync_preview_confirm,
    sync_queue_state,
    sync_upload_enqueue,
    upload_open,
    upload_store,
)

ITEMS_PER_PAGE = 50
OUTCOMES = [choice for choice, _ in SyncItem.Outcome.choices if choice != SyncItem.Outcome.MEMBER]


def message_html(text: str) -> SafeString:
    """A message whose `commands` are shown as code rather than with their backticks."""
    parts = text.split("`")
    return format_html_join(
        "",
        "{}",
        (
            ((format_html_join("", "<code>{}</code>", [(part,)]) if i % 2 else part),)
            for i, part in enumerate(parts)
        ),
    )


class ImportViews:
    """Views mixed into the run admin; ModelAdmin gives admin_site, opts and media."""

    def import_urls(self) -> list:
        view = self.admin_site.admin_view
        name = "productsync_syncrun_"
        return [
            path("upload/", view(self.upload_view), name=name + "upload"),
            path(
                "<int:run_id>/confirm/",
                view(require_POST(self.confirm_view)),
                name=name + "confirm",
            ),
            path("<int:run_id>/feed/", view(self.upload_file_view), name=name + "upload_file"),
            path("export/", view(self.export_view), name=name + "export"),
        ]

    def _require(self, request, run: bool = False) -> None:
        if not self.has_view_permission(request) or (
            run and not request.user.has_perm(SyncRun.RUN_PERMISSION)
        ):
            raise PermissionDenied

    def upload_view(self, request):
        self._require(request, run=True)
        limit = app_settings.UPLOAD_MAX_BYTES
        too_large = int(request.META.get("CONTENT_LENGTH") or 0) > limit + 64 * 1024
        form = UploadForm(
            request.POST if request.method == "POST" and not too_large else None,
            request.FILES if request.method == "POST" and not too_large else None,
        )
        if too_large:
            messages.error(request, f"The upload is larger than the limit of {limit} bytes.")
        elif form.is_bound and form.is_valid():
            response = self._upload_start(request, form.cleaned_data)
            if response is not None:
                return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Upload a feed",
            "form": form,
            "queue_state": sync_queue_state(),
            "limit": limit,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/productsync/syncrun/upload.html", context)

    def _upload_start(self, request, data: dict):
        dry_run = data["action"] == "preview"
        feed_options = {key: data[key] for key in ("format", "preset", "sheet") if data[key]}
        if data["allow_mass_change"]:
            feed_options["allow_mass_change"] = True  # recorded: a confirm keeps it
        if data["kind"] != "catalogue":
            feed_options["partial"] = True
            if data["partner"].strip():
                feed_options["partner"] = data["partner"].strip()
        try:
            stored = upload_store(data["file"]) if data["file"] else None
            if data["mapping"]:
                feed_options["mapping"] = upload_store(data["mapping"]).path
            queued = sync_upload_enqueue(
                source=stored.path if stored else data["url"],
                upload=stored,
                batch_size=data["batch_size"],
                feed_options=feed_options,
                dry_run=dry_run,
            )
        except (QueueError, ProductSyncError) as exc:
            messages.error(request, message_html(f"Not started: {exc}."))
            return None
        return self._queued_redirect(request, queued)

    def confirm_view(self, request, run_id: int):
        self._require(request, run=True)
        run = get_object_or_404(SyncRun, pk=run_id)
        try:
            queued = sync_preview_confirm(run.pk)
        except (QueueError, ProductSyncError) as exc:
            messages.error(request, message_html(f"Not synced: {exc}."))
            return HttpResponseRedirect(reverse("admin:productsync_syncrun_change", args=[run.pk]))
        return self._queued_redirect(request, queued)

    def upload_file_view(self, request, run_id: int):
        self._require(request)
        run = get_object_or_404(SyncRun, pk=run_id)
        if not run.upload:
            raise Http404("this run read no uploaded file")
        try:
            stream = upload_open(run.upload)
        except OSError:
            raise Http404("the uploaded file is gone") from None
        # Never rendered by the browser: a feed may hold HTML or script.
        response = FileResponse(
            stream,
            as_attachment=True,
            filename=run.upload_name or "feed",
            content_type="application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def export_view(self, request):
        self._require(request)
        fmt = request.GET.get("format", "jsonl")
        source = request.GET.get("source") or None
        if fmt == "csv":
            writer = csv.writer(Echo())
            body = (writer.writerow(row) for row in catalogue_csv_rows(source))
            content_type = "text/csv; charset=utf-8"
        elif fmt == "jsonl":
            body, content_type = catalogue_jsonl(source), "application/x-ndjson; charset=utf-8"
        else:
            raise Http404("format must be jsonl or csv")
        response = StreamingHttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="catalogue.{fmt}"'
        return response

    @staticmethod
    def items_context(request, run: SyncRun) -> dict:
        """The run's recorded items (a preview's every item, a real run's changes) on one page
        of one outcome, those found by the search q if given: one count and one page query,
        whatever the size of the run."""
        outcome = request.GET.get("outcome", "")
        if outcome not in OUTCOMES:
            outcome = ""
        search = request.GET.get("q", "").strip()[:SEARCH_CHARS]
        rows = run_items(run, outcome, search)
        page = Paginator(SyncItem.page_rows(rows.order_by("position")), ITEMS_PER_PAGE).get_page(
            request.GET.get("items")
        )
        return {
            "items_page": page,
            "item_rows": [(item, item.page_change_rows()) for item in page],
            "item_outcome": outcome,
            "item_search": search,
            "search_chars": SEARCH_CHARS,
            "item_outcomes": OUTCOMES,
            "has_items": run.item_rows > 0,
        }
