"""feeds_dump: print every feed as a [[feed]] table of TOML, the form feeds_load reads."""

from django.core.management.base import BaseCommand

from productsync.services import feeds_dump


class Command(BaseCommand):
    help = "Print the feeds as TOML [[feed]] tables; `feeds_load` of the output changes nothing."

    def handle(self, *args, **options) -> None:
        self.stdout.write(feeds_dump(), ending="")
