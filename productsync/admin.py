"""Read-only run history in the Django admin."""

from django.contrib import admin

from productsync.models import SyncBatch, SyncFailure, SyncRun


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "trigger",
        "source",
        "started_at",
        "items",
        "created",
        "updated",
        "unchanged",
        "failed",
        "failed_batches",
        "dry_run",
    ]
    list_filter = ["status", "trigger", "workers", "dry_run"]
    date_hierarchy = "started_at"
    search_fields = ["source", "=id"]


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
        "duration",
        "attempts",
        "claimed_by",
    ]
    list_filter = ["status"]
    list_select_related = ["run"]


@admin.register(SyncFailure)
class SyncFailureAdmin(ReadOnlyAdmin):
    list_display = ["run", "position", "upc", "message"]
    list_select_related = ["run"]
    search_fields = ["upc", "message"]
