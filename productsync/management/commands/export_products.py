"""export_products: write the catalogue (or one source's products) as a feed to stdout."""

import csv
import os
import sys

from django.core.management.base import BaseCommand

from productsync.exports import catalogue_csv_rows, catalogue_jsonl


class Command(BaseCommand):
    requires_system_checks = ["productsync"]
    help = (
        "Write the catalogue as a feed in productsync's format (JSON Lines, or CSV), read a "
        "chunk of products at a time: syncing it into an empty shop gives the same catalogue."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        parser.add_argument(
            "--source", help="only the products whose last sync read this source (path or URL)"
        )
        parser.add_argument(
            "--chunk", type=int, default=500, help="products read per round of queries"
        )

    def handle(self, *args, **options) -> None:
        try:
            self._write(options)
            self.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`export_products | head`): what it wanted was written.
            # Later flushes go nowhere instead of failing again at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def _write(self, options: dict) -> None:
        out = self.stdout
        if options["format"] == "csv":
            writer = csv.writer(out, lineterminator="\n")
            for row in catalogue_csv_rows(options["source"], options["chunk"]):
                writer.writerow(row)
            return
        for line in catalogue_jsonl(options["source"], options["chunk"]):
            out.write(line, ending="")
