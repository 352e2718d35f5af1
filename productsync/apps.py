"""App config for productsync."""

import sys

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save, pre_migrate


def _schedule_after_migrate(sender, using="default", plan=None, **kwargs) -> None:
    """`migrate` (not the flush of a test database, which sends no plan) keeps the django-q2
    schedule in step with PRODUCTSYNC['SCHEDULE'], so a deploy that changes it needs no
    extra step."""
    from django.db import connections

    if plan is None or "django_q_schedule" not in connections[using].introspection.table_names():
        return
    from productsync.services import sync_schedule_apply

    message = sync_schedule_apply(using)
    if kwargs.get("verbosity", 1) >= 1:
        kwargs.get("stdout", sys.stdout).write(f"  productsync: {message}\n")


def _capture_before_migrate(sender, using="default", **kwargs) -> None:
    """Migrations run without the change-capture triggers: SQLite cannot rebuild a table a
    trigger names, and a migration may change a column they read."""
    from productsync.services import capture_remove

    capture_remove(using)


def _capture_after_migrate(sender, using="default", **kwargs) -> None:
    """After every migrate (and a test database's flush), the triggers are in place."""
    from productsync.services import capture_install

    capture_install(using)


def _feeds_changed(sender, **kwargs) -> None:
    """A feed saved or deleted, however (the admin, feeds_load, the ORM): its django-q2
    schedule follows in the same transaction."""
    from productsync.services import feed_schedules_apply

    feed_schedules_apply()


class ProductSyncConfig(AppConfig):
    name = "productsync"
    verbose_name = "Product sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from productsync import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(_schedule_after_migrate, sender=self)
        pre_migrate.connect(_capture_before_migrate, sender=self)
        post_migrate.connect(_capture_after_migrate, sender=self)
        feed = self.get_model("Feed")
        post_save.connect(_feeds_changed, sender=feed, dispatch_uid="productsync_feed_saved")
        post_delete.connect(_feeds_changed, sender=feed, dispatch_uid="productsync_feed_deleted")
