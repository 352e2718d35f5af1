"""sync_products: parse arguments, run the sync service, show progress and a summary."""

import argparse
import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.utils import timezone

from productsync.conf import MAX_BATCH_SIZE
from productsync.exceptions import ProductSyncError, RunActiveError
from productsync.feeds import FORMATS
from productsync.management.progress import BarProgress, LineProgress
from productsync.models import SyncItem, SyncRun
from productsync.records import one_line, printable
from productsync.report import counted
from productsync.services import (
    TERMINATED,
    db_retry,
    feed_run_execute,
    run_spec_build,
    run_spec_execute,
)

SHOWN_FAILURES = 20
# Seconds the command keeps trying to read a run back for its summary, on new connections.
READ_BACK_WITHIN = 30
# Options passed to run_spec_build as they are parsed (the names are the same).
FEED_OPTIONS = (
    "format",
    "delimiter",
    "encoding",
    "mapping",
    "preset",
    "partner",
    "credentials",
    "archive_to",
    "sheet",
)
RUN_OPTIONS = (
    "batch_size",
    "dry_run",
    "limit",
    "hide_missing",
    "workers",
    "resume",
    "full",
    "partial",
    "diff",
    "stock_authoritative",
    "max_failures",
    "allow_mass_change",
    "only",
    "owns",
    "compare",
)

# What a feed configures itself: not given with --feed.
FEED_DEFINES = (
    "format",
    "delimiter",
    "encoding",
    "mapping",
    "preset",
    "partner",
    "partial",
    "batch_size",
    "hide_missing",
    "resume",
    "only",
)
# Options of one run that --feed takes.
FEED_RUN_OPTIONS = (
    "dry_run",
    "limit",
    "workers",
    "full",
    "diff",
    "allow_mass_change",
    "owns",
    "compare",
)


class FeedName(str):
    """A --feed argument: the name of a feed, not a source."""


def whole_number(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            text = printable(text[:40])
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {text[:40]}")
        return value

    return parse


def _source(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a path or an http(s) URL")
    return text


def _one_char(text: str) -> str:
    text = "\t" if text in ("\\t", "tab") else text
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"expected one character, got {text!r}")
    return text


def _feed_arguments(parser) -> None:
    """Where the feed is and how to read it."""
    parser.add_argument(
        "--source",
        action="append",
        type=_source,
        help="feed path, http(s) URL, or sftp://, ftp(s):// or s3:// URL (a * pattern in the "
        "file name picks the newest match); repeat it for several feeds, synced in order, "
        "one run each (default: PRODUCTSYNC['SOURCE'])",
    )
    parser.add_argument(
        "--feed",
        action="append",
        metavar="NAME",
        help="a feed kept in the database (the admin's Feeds, feeds_load), run exactly as "
        "its schedule runs it; repeat it for several feeds, synced in order",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="feed format (default: from the Content-Type, the extension, or the content)",
    )
    parser.add_argument("--delimiter", type=_one_char, help="CSV delimiter (default: sniffed)")
    parser.add_argument("--encoding", help="CSV encoding (default: sniffed, UTF-8 first)")
    parser.add_argument(
        "--mapping", help="mapping file (TOML or JSON) for a feed in a foreign shape"
    )
    parser.add_argument(
        "--preset",
        help="a platform's product export: shopify, woocommerce or magento (CSV), or "
        "google (Merchant Center XML or tab-separated; default: told from the CSV header "
        "or the XML namespace)",
    )
    parser.add_argument(
        "--sheet", help="the sheet of an Excel workbook to read (default: the first)"
    )
    parser.add_argument(
        "--credentials",
        metavar="NAME",
        help="an sftp://, ftp(s):// or s3:// source's entry in PRODUCTSYNC['CREDENTIALS']",
    )
    parser.add_argument(
        "--archive-to",
        metavar="FOLDER",
        help="move a remote source's file, once read to its end, into this folder on the "
        "same server (relative: beside the file)",
    )


def _run_arguments(parser) -> None:
    """What the run does with the feed."""
    parser.add_argument(
        "--batch-size",
        type=whole_number(1, MAX_BATCH_SIZE),
        help="items per batch and transaction (default: PRODUCTSYNC['BATCH_SIZE']; "
        "a partial run: PRODUCTSYNC['PARTIAL_BATCH_SIZE'])",
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        default=None,
        help="items carry only what they change, keyed by upc or by partner and "
        "partner_sku: nothing is created or hidden (default: PRODUCTSYNC['PARTIAL'])",
    )
    parser.add_argument(
        "--partner",
        help="a stock file (CSV: sku, price, num_in_stock) of this partner's stock "
        "records; implies --partial. With --preset: the partner of the feed's stock "
        "records (a whole feed, not partial)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and roll back")
    parser.add_argument(
        "--diff",
        action="store_true",
        help="print what each new or updated item changes, field by field (a dry run "
        "records it for every item; a real run for up to PRODUCTSYNC['CHANGES_MAX'])",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="read and check every item even when the feed is unchanged since the last run",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        default=None,
        help="read every item and compare each product with it by value, repairing what "
        "differs: after edits that bypassed change capture (TRUNCATE, raw SQL with triggers "
        "off); a stock file's later prices are replaced by the feed's",
    )
    parser.add_argument("--limit", type=whole_number(0), help="stop after this many items")
    parser.add_argument(
        "--hide-missing",
        action="store_true",
        default=None,
        help="hide (is_public=False) products of this source the feed no longer has "
        "(default: PRODUCTSYNC['HIDE_MISSING'])",
    )


def _write_arguments(parser) -> None:
    """Which of its items' changes the run writes, and when it stops."""
    parser.add_argument(
        "--allow-mass-change",
        action="store_true",
        default=None,
        help="let a deliberate mass change through: else a run that would clear, zero or "
        "change one field of most products it matches stops before writing",
    )
    parser.add_argument(
        "--only", choices=("create", "update"), help="new products only, or existing only"
    )
    parser.add_argument(
        "--stock-authoritative",
        action="store_true",
        default=None,
        help="each item written sets its stock levels to the feed's, units that orders "
        "consumed since included; by default a level is written only when the feed's value "
        "changes (default: PRODUCTSYNC['STOCK_AUTHORITATIVE'])",
    )
    parser.add_argument(
        "--max-failures",
        metavar="N or N%",
        help="stop the run, failed, once more items failed than this: a number of items or "
        "a percentage of the items read (default: PRODUCTSYNC['MAX_FAILURES'], no limit)",
    )
    parser.add_argument(
        "--owns",
        metavar="FIELD,FIELD",
        help="the fields the run owns (price,num_in_stock): it writes those and nothing "
        "else, whatever the items carry; drift repair restores only those (default: the "
        "feed's or its mapping's owns, else every field an item carries)",
    )


def _run_read(run_id: int) -> tuple[SyncRun, list]:
    run = SyncRun.objects.get(pk=run_id)
    return run, list(run.failure_set.all()[:SHOWN_FAILURES])


class Command(BaseCommand):
    # Only productsync's settings are checked: Django's and Oscar's checks (URLs, models,
    # templates) cost a scheduled run more than a small sync takes; `migrate` and `check` run
    # them.
    requires_system_checks = ["productsync"]
    help = (
        "Sync products from feeds (JSON, JSON Lines, CSV, Oscar's catalogue CSV; files or "
        "http(s) URLs) into the Oscar catalogue in batches."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.print_usage = lambda file=None: None  # argument errors stay one line
        return parser

    def add_arguments(self, parser) -> None:
        _feed_arguments(parser)
        _run_arguments(parser)
        _write_arguments(parser)
        parser.add_argument(
            "--json", action="store_true", help="end stdout with one JSON summary line"
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="one line per batch instead of a bar"
        )
        parser.add_argument(
            "--workers",
            choices=SyncRun.Workers.values,
            help="local: write every batch here; queue: enqueue one django-q2 task per batch "
            "and wait for the qcluster workers (default: PRODUCTSYNC['WORKERS'])",
        )
        parser.add_argument(
            "--resume",
            type=whole_number(1),
            metavar="RUN_ID",
            help="continue an aborted or failed run from its first uncommitted batch",
        )

    def handle(self, *args, **options) -> None:
        show_bar = not options["no_progress"] and sys.stderr.isatty() and sys.stdout.isatty()
        progress = BarProgress() if show_bar else LineProgress(self.stdout)
        feed_options = {key: options[key] for key in FEED_OPTIONS if options[key] is not None}
        # Several sources run one after another, each its own run to its end, as
        # oscar_import_catalogue imports each file in turn; the exit status is the worst.
        worst, errors = 0, []
        for source in self._runs(options):
            status, run_id, message = self._sync(source, options, progress, feed_options)
            if run_id is not None:
                if options["diff"]:
                    self._changes(run_id)
                # A run that stopped on an error is said on stderr; --json still says it.
                self._summary(run_id, options["json"], only_json=bool(message))
            if message:
                errors.append((status, message))
            worst = max(worst, status)
            if status in (130, 143):
                break  # Ctrl-C or SIGTERM stops the command, not just this source
        if errors:
            chosen = max(errors, key=lambda error: error[0])
            for error in errors:
                if error is not chosen:
                    self.stderr.write(error[1])
            raise CommandError(chosen[1], returncode=worst)
        if worst:
            sys.exit(worst)

    @staticmethod
    def _runs(options) -> list:
        """The runs to make: each --feed (as FeedName) or each --source (None: SOURCE)."""
        if not options["feed"]:
            return options["source"] or [None]
        given = [f"--{k}" for k in ("source", *FEED_DEFINES) if options.get(k) is not None]
        if given:
            flag = given[0].replace("_", "-")
            raise CommandError(
                f"--feed runs the feed as it is configured: {flag} cannot be given with it",
                returncode=2,
            )
        return [FeedName(name) for name in options["feed"]]

    @staticmethod
    def _feed_run(name: str, options, progress) -> tuple[int, int | None, str]:
        run_id = feed_run_execute(
            name,
            trigger=SyncRun.Trigger.COMMAND,
            on_start=progress.start,
            on_batch=progress.batch,
            **{key: options[key] for key in FEED_RUN_OPTIONS},
        )
        if run_id is None:
            return 2, None, f"no feed named {name!r}"
        run = SyncRun.objects.get(pk=run_id)
        return (0 if run.status == SyncRun.Status.SUCCEEDED else 1), run.pk, ""

    def _sync(self, source, options, progress, feed_options) -> tuple[int, int | None, str]:
        """Run one source: (exit status, the id of the run recorded or None, error text)."""
        try:
            if isinstance(source, FeedName):
                return self._feed_run(str(source), options, progress)
            spec = run_spec_build(
                source, feed_options=feed_options, **{key: options[key] for key in RUN_OPTIONS}
            )
            run = run_spec_execute(spec, on_start=progress.start, on_batch=progress.batch)
        except RunActiveError as exc:
            return 1, getattr(exc, "run_id", None), str(exc)
        except ProductSyncError as exc:
            return 2, getattr(exc, "run_id", None), printable(str(exc))
        except KeyboardInterrupt as exc:
            # Exit statuses as a shell gives a process ended by SIGINT or SIGTERM.
            status = 143 if str(exc) == TERMINATED else 130
            message = (
                f"{str(exc) or 'interrupted'}: the run is marked aborted; "
                "the batches committed before stay"
            )
            return status, getattr(exc, "run_id", None), message
        finally:
            progress.close()
        return (0 if run.status == SyncRun.Status.SUCCEEDED else 1), run.pk, ""

    def _changes(self, run_id: int) -> None:
        """The new and updated items the run recorded, each changed field (or fact of a new
        item) on its line."""
        rows = SyncItem.objects.filter(run_id=run_id, outcome__in=["created", "updated"])
        for item in rows.order_by("position").iterator(chunk_size=1000):
            name = item.upc or item.codes  # a stock file's row: its SKU
            self.stdout.write(f"  item {item.position} ({printable(name)}): {item.outcome}")
            for field, old, new in item.change_rows():
                was = "" if item.outcome == "created" else f"{printable(old)} -> "
                self.stdout.write(f"    {printable(field)}: {was}{printable(new)}")

    def _summary(self, run_id: int, as_json: bool, only_json: bool = False) -> None:
        """The run as the database holds it: what was recorded, not what was counted."""
        try:
            run, failures = db_retry(lambda: _run_read(run_id), READ_BACK_WITHIN, connection.close)
        except DatabaseError as exc:
            self.stderr.write(f"run {run_id}: cannot read it back: {one_line(exc)}")
            return
        duration = ((run.finished_at or timezone.now()) - run.started_at).total_seconds()
        out = self.stdout
        if only_json:
            if as_json:
                out.write(json.dumps(self._json(run, duration)))
            return
        for failure in failures:
            out.write(
                f"  item {failure.position} (upc {printable(failure.upc) or '-'}): "
                f"{printable(failure.message)}"
            )
        if run.failed > SHOWN_FAILURES:
            out.write(f"  ... and {run.failed - SHOWN_FAILURES} more failures in run {run.pk}")
        for note in run.notes:
            out.write(f"Note: {printable(note)}")
        if run.error:
            out.write(f"Error: {printable(run.error)}")
        dry = " (dry run, nothing kept)" if run.dry_run else ""
        out.write(
            f"Run {run.pk} {run.get_status_display()}{dry}: {counted(run.items, 'item')}, "
            f"{run.created} created, "
            f"{run.updated} updated, {run.unchanged} unchanged, {run.repaired} repaired, "
            f"{run.failed} failed, "
            f"{run.hidden} hidden; "
            f"{counted(run.batches, 'batch')}, "
            f"{counted(run.failed_batches, 'failed batch')}; {duration:.2f}s"
        )
        if as_json:
            out.write(json.dumps(self._json(run, duration)))

    @staticmethod
    def _json(run: SyncRun, duration: float) -> dict:
        return {
            "run_id": run.pk,
            "status": run.status,
            **{key: getattr(run, key) for key in SyncRun.COUNTERS},
            "duration_s": round(duration, 3),
        }
