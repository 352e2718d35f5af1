"""productsync_prune: delete run history older than N days (PRODUCTSYNC['KEEP_DAYS'])."""

from django.core.management.base import BaseCommand, CommandError

from productsync.conf import app_settings
from productsync.management.commands.sync_products import whole_number
from productsync.services import sync_run_prune


class Command(BaseCommand):
    help = (
        "Delete finished sync runs (with their batches and failures) that started more than "
        "--days days ago (default: PRODUCTSYNC['KEEP_DAYS'])."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=whole_number(1), help="keep this many days of history")

    def handle(self, *args, **options) -> None:
        days = options["days"] or app_settings.KEEP_DAYS
        if days is None:
            raise CommandError("give --days or set PRODUCTSYNC['KEEP_DAYS']", returncode=2)
        deleted = sync_run_prune(days)
        self.stdout.write(f"Deleted {deleted} runs that started more than {days} days ago.")
