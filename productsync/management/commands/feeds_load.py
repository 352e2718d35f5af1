"""feeds_load: create or update feeds from a TOML file of [[feed]] tables, all or nothing."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from productsync.services import FeedFileError, feeds_load


class Command(BaseCommand):
    help = (
        "Create or update feeds by name from a TOML file of [[feed]] tables (the fields of "
        "a feed); --prune deletes the feeds it does not name. Nothing is changed when the "
        "file has an error."
    )

    stealth_options = ("stdin",)

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="a TOML file, or - for standard input")
        parser.add_argument(
            "--prune", action="store_true", help="delete the feeds the file does not name"
        )

    def handle(self, *args, **options) -> None:
        name = options["file"]
        try:
            text = (
                (options.get("stdin") or sys.stdin).read()
                if name == "-"
                else Path(name).read_text(encoding="utf-8")
            )
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{name}: cannot read: {exc}", returncode=2) from None
        try:
            result = feeds_load(text, prune=options["prune"])
        except FeedFileError as exc:
            raise CommandError(f"{name}: {exc}; nothing was changed", returncode=2) from None
        for label in ("created", "updated", "deleted"):
            for feed in getattr(result, label):
                self.stdout.write(f"{label}: {feed}")
        self.stdout.write(
            f"{len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.unchanged)} unchanged, {len(result.deleted)} deleted"
        )
