"""feeds_token: create or rotate a feed's push token, printed once."""

from django.core.management.base import BaseCommand, CommandError

from productsync.services import feed_find, feed_token_rotate


class Command(BaseCommand):
    help = (
        "Create a new push token for a feed (an earlier one stops working) and print it: "
        "only its digest is kept, so it is shown this once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="the feed's name")

    def handle(self, *args, **options) -> None:
        feed = feed_find(options["name"])
        if feed is None:
            raise CommandError(f"no feed named {options['name']!r}", returncode=2)
        self.stdout.write(feed_token_rotate(feed))
