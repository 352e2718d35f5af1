"""sync_products_schedule: make the django-q2 schedule of the sync match the settings."""

from django.core.management.base import BaseCommand

from productsync.services import sync_schedule_apply


class Command(BaseCommand):
    help = (
        "Create or update the django-q2 schedule of the product sync from "
        "PRODUCTSYNC['SCHEDULE'], or delete it when the setting is None. Idempotent."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(sync_schedule_apply())
