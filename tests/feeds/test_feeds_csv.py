"""CSV feeds: our header CSV and Oscar's headerless CSV, against the JSON feed and Oscar."""

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from oscar.core.loading import get_model

from productsync.exceptions import SourceError
from productsync.feeds import FeedOptions, feed_open
from productsync.feeds.csvfeed import delimiter_sniff, encoding_sniff
from productsync.models import SyncRun
from productsync.services import sync_run_execute
from productsync.writer.sanitise import html_sanitise
from tests.catalogue import (
    HEADER,
    catalogue_clear,
    catalogue_snapshot,
    demo_csv,
    demo_oscar_csv,
    demo_without,
    reading_peak,
)
from tests.conftest import FIXTURES, shared_data

Product = get_model("catalogue", "Product")
SANDBOX = ["books.essential.csv", "books.hacking.csv", "books.computers-in-fiction.csv"]


def oscar_file(name: str) -> Path:
    return shared_data("oscar", name)


def items_of(path, **options) -> list:
    with feed_open(str(path), options=FeedOptions(**options)) as feed:
        return list(feed)


_JSON_STATE: dict = {}


def json_state(items=None, write_feed=None) -> dict:
    """The catalogue the JSON feed (or the given items as JSON) produces on an empty one."""
    if items is None and _JSON_STATE:
        return _JSON_STATE
    catalogue_clear()
    source = write_feed(items) if items is not None else str(FIXTURES / "products.json")
    run = sync_run_execute(source)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    state = catalogue_snapshot()
    if items is None:
        _JSON_STATE.update(state)
    return state


@pytest.mark.parametrize(
    ("delimiter", "encoding", "options"),
    [
        (",", "utf-8-sig", {}),  # BOM and CRLF, as Excel writes
        ("\t", "utf-16", {}),
        ("|", "cp1252", {"delimiter": "|", "encoding": "cp1252"}),
    ],
)
@pytest.mark.django_db
def test_csv_round_trips_the_demo_catalogue_like_json(tmp_path, delimiter, encoding, options):
    source = demo_csv(tmp_path / "products.csv", delimiter, encoding)

    run = sync_run_execute(source, feed_options=options)

    assert (run.status, run.items, run.created, run.total_items) == ("succeeded", 194, 194, 194)
    assert catalogue_snapshot() == json_state()


@pytest.mark.django_db
def test_a_csv_run_after_the_json_run_changes_nothing(tmp_path):
    assert sync_run_execute(str(FIXTURES / "products.json")).created == 194
    source = demo_csv(tmp_path / "products.csv")
    # 15 JSON items leave their description out; the CSV's empty cells give it, empty.
    described = Product.objects.exclude(description="").count()

    run = sync_run_execute(source)

    assert (run.unchanged, run.updated, run.created) == (179, 15, 0)
    assert Product.objects.exclude(description="").count() == described
    assert sync_run_execute(source, full=True).unchanged == 194


@pytest.mark.django_db
def test_oscar_csv_round_trips_what_the_format_can_say(tmp_path, write_feed):
    """Oscar's format has no is_public and no currency: equal to the JSON feed without them."""
    run = sync_run_execute(demo_oscar_csv(tmp_path / "products.csv"))

    assert (run.status, run.items, run.created) == ("succeeded", 194, 194)
    expected = json_state(
        demo_without("is_public", stock_keys=("currency",)), write_feed=write_feed
    )
    assert catalogue_snapshot() == expected


def test_quoted_fields_with_delimiters_newlines_and_quotes(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_bytes(
        b"upc,title,product_class,description,categories\r\n"
        b'A1,"Pots, pans ""and"" lids",Homeware,"<p>line one\r\nline two</p>",'
        b'"Home > Kitchen|Sale > Kitchen"\r\n'
        b"A2,Plain,Homeware,,\r\n"
    )

    items = items_of(path)

    assert [i.payload for i in items] == [
        {
            "upc": "A1",
            "title": 'Pots, pans "and" lids',
            "product_class": "Homeware",
            "description": "<p>line one\r\nline two</p>",
            "categories": ["Home > Kitchen", "Sale > Kitchen"],
        },
        {
            "upc": "A2",
            "title": "Plain",
            "product_class": "Homeware",
            "description": "",
            "categories": [],
        },
    ]


@pytest.mark.django_db
def test_a_ragged_row_fails_alone_with_its_line_number(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(
        ",".join(HEADER) + "\n"
        'B1,One,Book,"two\nlines",Books,,Acme,S1,1.00,GBP,1\n'
        "B2,Two,Book\n"
        "B3,Three,Book,,Books,,Acme,S3,3.00,GBP,3\n",
        encoding="utf-8",
    )

    run = sync_run_execute(str(path))

    assert (run.status, run.created, run.failed) == ("completed_with_failures", 2, 1)
    failure = run.failure_set.get()
    assert (failure.position, failure.raw_payload) == (1, "B2,Two,Book")
    assert failure.message == "line 4: expected 11 fields, got 3"


@pytest.mark.django_db
def test_a_csv_without_the_required_columns_fails_before_the_first_batch(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text("upc,name,price\nX1,Thing,1.00\n", encoding="utf-8")

    with pytest.raises(CommandError, match="the CSV header has no title, product_class column"):
        call_command("sync_products", "--source", str(path))

    run = SyncRun.objects.get()
    assert (run.status, run.batches) == ("failed", 0)


def test_sniffing_delimiter_and_encoding():
    assert delimiter_sniff('a;"b;c",d;e') == ";"
    assert delimiter_sniff("a\tb\tc,d") == "\t"
    assert delimiter_sniff("single") == ","
    assert encoding_sniff("Café".encode()) == "utf-8-sig"
    assert encoding_sniff("Café crème".encode("cp1252")) == "cp1252"
    assert encoding_sniff("Café".encode("utf-16")) == "utf-16"
    # A multi-byte character cut by the end of the sample is still UTF-8.
    assert encoding_sniff("Café".encode()[:-1]) == "utf-8-sig"


def test_rows_of_the_same_upc_in_a_row_make_one_product(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(
        ",".join(HEADER) + "\n"
        "C1,Mug,Homeware,,Home,,Acme,M1,5.00,GBP,1\n"
        "C1,Mug,Homeware,,Gifts,,Globex,G1,6.00,EUR,\n"
        "C2,Cup,Homeware,,Home,,Acme,M2,5.00,GBP,1\n",
        encoding="utf-8",
    )

    first, second = items_of(path)

    assert first.payload["categories"] == ["Home", "Gifts"]
    assert [sr["partner_sku"] for sr in first.payload["stockrecords"]] == ["M1", "G1"]
    assert first.payload["stockrecords"][1]["num_in_stock"] is None
    assert second.position == 1


# Oscar's own CSV, compared with Oscar's own importer.


def test_oscar_format_is_detected_and_its_quirks_read(tmp_path):
    items = items_of(oscar_file("books-small.csv"))

    assert len(items) == 10
    by_upc = {i.payload["upc"]: i.payload for i in items}
    assert "stockrecords" not in by_upc["9780955337819"]  # the 5-column row
    assert by_upc["9780115531446"]["description"] == ""  # NULL
    assert by_upc["9781904859420"]["title"] == (
        'Readings from" Voices of a People\'s History of the United States"'
    )
    assert '"Daisy Miller"' in by_upc["9780140436945"]["description"]


def test_oscar_backslashes_other_than_escapes_are_kept():
    (item,) = [
        i
        for i in items_of(oscar_file("books.essential.csv"))
        if i.payload["upc"] == "9780131774292"
    ]
    # Oscar's importer reads `\n` here as `n`; the file means the two characters.
    assert 'printf ( "   in banana ( ) \\n" )' in item.payload["description"]


@pytest.mark.django_db
def test_the_malformed_semicolon_file_fails_row_by_row_or_not_at_all():
    with pytest.raises(SourceError, match="not Oscar's 5 or 9"):
        items_of(oscar_file("books-small-semicolon.csv"))

    run = sync_run_execute(
        str(oscar_file("books-small-semicolon.csv")), feed_options={"format": "oscar-csv"}
    )

    assert (run.status, run.failed, run.created) == ("completed_with_failures", 10, 0)
    messages = list(run.failure_set.values_list("message", flat=True))
    assert messages[0] == "line 1: expected 5 or 9 fields, got 7"
    assert messages[1] == "line 2: expected 5 or 9 fields, got 4"


@pytest.mark.django_db
def test_same_catalogue_as_oscar_import_catalogue_on_the_sandbox_files():
    files = [str(oscar_file(name)) for name in [*SANDBOX, "books-small.csv"]]
    call_command("oscar_import_catalogue", *files)
    oscar = catalogue_snapshot()
    catalogue_clear()

    sources = [arg for f in files for arg in ("--source", f)]
    call_command("sync_products", *sources, stdout=io.StringIO())
    ours = catalogue_snapshot()

    assert len(ours["products"]) == len(oscar["products"]) == 208
    assert ours["categories"] == oscar["categories"]
    assert ours["partners"] == oscar["partners"] == ["Book partner", "Gardners"]
    assert ours["classes"] == oscar["classes"] == ["Book"]
    differ = {upc for upc in ours["products"] if ours["products"][upc] != oscar["products"][upc]}
    # Oscar stores descriptions as given; the sync sanitises them. Expert C Programming's
    # `#include <setjmp.h>` and the XML pasted into another book's are tags to a browser, and
    # go (Oscar also turns the literal `\n` of Expert C's description into `n`).
    sanitised = {"9780131774292", "9780201616224"}
    for upc in sanitised:
        assert ours["products"][upc]["description"].replace("\\n", "n") == html_sanitise(
            oscar["products"][upc]["description"]
        )
        assert {**ours["products"][upc], "description": ""} == {
            **oscar["products"][upc],
            "description": "",
        }
    # Three books are listed in two files: Oscar's importer never removes a category, so it
    # keeps both; a sync makes a product match its latest feed, so ours keep the last file's.
    in_two_files = {"9781416507789", "9780765319852", "9780553380958"}
    for upc in in_two_files:
        assert oscar["products"][upc]["categories"] == [
            "Books > Fiction > Computers in Literature",
            "Books > Non-Fiction > Hacking",
        ]
        assert ours["products"][upc]["categories"] == ["Books > Fiction > Computers in Literature"]
        del ours["products"][upc]["categories"], oscar["products"][upc]["categories"]
        assert ours["products"][upc] == oscar["products"][upc]
    assert differ == sanitised | in_two_files
    runs = SyncRun.objects.order_by("pk")
    assert [r.status for r in runs] == ["succeeded"] * 4
    assert [r.updated for r in runs] == [0, 0, 3, 0]


# Memory stays flat however long the CSV is.


def _large_csv(path, rows: int) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(HEADER) + "\n")
        for n in range(rows):
            f.write(f"U{n},Title {n},Book,<p>{'x' * 900}</p>,Books > Big,,Acme,S{n},1.00,GBP,5\n")
    return str(path)


def test_memory_stays_flat_for_a_large_csv(tmp_path):
    small = _large_csv(tmp_path / "small.csv", 250)
    reading_peak(small)  # the first read also allocates caches of the csv and re modules
    small_count, small_peak = reading_peak(small)
    large = _large_csv(tmp_path / "large.csv", 5_000)

    count, peak = reading_peak(large)

    assert (small_count, count) == (250, 5_000)
    assert Path(large).stat().st_size > 4_000_000
    # Twenty times the rows, about the same peak: a few buffers, not the file.
    assert peak < small_peak * 1.5 < 1_000_000, (small_peak, peak)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"delimiter": ";;"}, "the CSV delimiter must be one character"),
        ({"format": "yaml"}, "unknown feed format 'yaml'"),
    ],
)
@pytest.mark.django_db
def test_bad_feed_options_fail_the_run_at_open(tmp_path, options, message):
    with pytest.raises(SourceError, match=message):
        sync_run_execute(demo_csv(tmp_path / "products.csv"), feed_options=options)

    assert SyncRun.objects.get().status == "failed"


def test_oscar_backslash_escapes_pair_up(tmp_path):
    path = tmp_path / "escapes.csv"
    path.write_text('Book,Books,U1,"Say \\"hi\\"",one\\ntwo\\\\nthree\\, four\n', encoding="utf-8")

    (item,) = items_of(path, format="oscar-csv")

    assert item.payload["title"] == 'Say "hi"'
    # \n is kept as text, \\ is one backslash, \, a comma.
    assert item.payload["description"] == "one\\ntwo\\nthree, four"
