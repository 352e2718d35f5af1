"""App config for productsync."""

from django.apps import AppConfig


class ProductSyncConfig(AppConfig):
    name = "productsync"
    verbose_name = "Product sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from productsync import checks  # noqa: F401  (registers the system checks)
