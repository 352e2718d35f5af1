"""export_products: the catalogue back as a feed, which synced into an empty shop gives the same
catalogue (Oscar's own fixtures and the demo catalogue, every field compared)."""

import csv
import datetime as dt
import io
import json
import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.models import SyncedProduct
from productsync.services import sync_run_execute
from productsync.writer.sanitise import html_clean
from tests.conftest import FIXTURES, ROOT, product, subprocess_env
from tests.oscar_catalogue import Fixture

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")
Category = get_model("catalogue", "Category")
Partner = get_model("partner", "Partner")


def export(*args: str) -> str:
    out = io.StringIO()
    call_command("export_products", *args, stdout=out)
    return out.getvalue()


def empty_the_shop() -> None:
    """Products, their stock, attribute values, categories and partners go; the shop's product
    classes and attribute definitions stay, as a shop defines them before syncing."""
    Product.objects.filter(parent__isnull=False).delete()
    Product.objects.all().delete()
    Category.objects.all().delete()
    Partner.objects.all().delete()
    assert not SyncedProduct.objects.exists()


def round_trip(feed_path: str, tmp_path, fmt: str = "jsonl") -> tuple[str, str]:
    run = sync_run_execute(feed_path, batch_size=7)
    assert run.status == "succeeded", (run.error, list(run.failure_set.values("message")))
    first = export("--format", fmt)
    exported = tmp_path / f"export.{fmt}"
    exported.write_text(first, encoding="utf-8")
    empty_the_shop()
    again = sync_run_execute(str(exported), batch_size=7)
    assert again.status == "succeeded", list(again.failure_set.values("message"))
    assert again.created == run.created
    return first, export("--format", fmt)


def same_value(a, b) -> bool:
    """Equal as values: an ISO date and time in either spelling, a price with or without
    trailing zeros, rich text as the sync stores it (sanitised)."""
    if isinstance(a, str) and isinstance(b, str) and a != b:
        for parse in (dt.datetime.fromisoformat, Decimal, html_clean):
            try:
                return parse(a) == parse(b)
            except (ValueError, ArithmeticError):
                continue
    return a == b


def same_stock(out: list[dict], feed: list[dict]) -> bool:
    keys = ("partner", "partner_sku", "price", "currency", "num_in_stock")
    return len(out) == len(feed) and all(
        same_value(o[k], f[k]) for o, f in zip(out, feed, strict=True) for k in keys
    )


def same_attributes(out: dict, feed: dict) -> bool:
    return out.keys() == feed.keys() and all(same_value(out[k], feed[k]) for k in out)


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize(
    "name", ["child_products.json", "productattributes.json", "multi-stockrecord-product.json"]
)
def test_oscar_fixtures_survive_export_and_reimport(name, write_feed, tmp_path):
    fixture = Fixture(name)
    fixture.create_schema()
    feed = fixture.feed()
    first, second = round_trip(write_feed(feed), tmp_path)
    assert lines(first) == lines(second)
    # The export says what the fixture says, field by field.
    exported = {item["upc"]: item for item in lines(first)}
    assert set(exported) == {item["upc"] for item in feed}
    for item in feed:
        out = exported[item["upc"]]
        for key in ("title", "product_class", "categories"):
            assert out.get(key, []) == item[key], key
        assert out["description"] == html_clean(item["description"])
        assert same_attributes(out.get("attributes", {}), item["attributes"]), item["upc"]
        assert same_stock(out.get("stockrecords", []), item["stockrecords"]), item["upc"]
        children = {c["upc"]: c for c in out.get("children", [])}
        assert set(children) == {c["upc"] for c in item.get("children", [])}
        for child in item.get("children", []):
            assert children[child["upc"]]["title"] == child["title"]
            assert same_attributes(
                children[child["upc"]].get("attributes", {}), child["attributes"]
            )
            assert same_stock(children[child["upc"]].get("stockrecords", []), child["stockrecords"])


def normalised(item: dict) -> dict:
    """A demo feed item as the export gives it: its description as the sync stores it
    (sanitised: nh3 writes `&#x27;` as `'`), empty lists and a true is_public left out."""
    out = {key: item[key] for key in ("upc", "title", "product_class", "categories")}
    out["description"] = html_clean(item.get("description", ""))
    out |= {"is_public": False} if item.get("is_public", True) is False else {}
    out |= {"stockrecords": item["stockrecords"]} if item.get("stockrecords") else {}
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_demo_catalogue_survives_export_and_reimport(fmt, tmp_path):
    demo = json.loads((FIXTURES / "products.json").read_text())
    first, second = round_trip(str(FIXTURES / "products.json"), tmp_path, fmt)
    assert first == second
    if fmt == "jsonl":
        exported = lines(first)
        assert sorted(exported, key=lambda i: i["upc"]) == sorted(
            map(normalised, demo), key=lambda i: i["upc"]
        )
    else:
        rows = list(csv.DictReader(io.StringIO(first)))
        # One row per stock record; a product without one takes one row.
        assert len(rows) == sum(max(1, len(i.get("stockrecords", []))) for i in demo)


def test_export_of_one_source(write_feed):
    sync_run_execute(write_feed([product("A-1"), product("A-2")], "a.json"))
    sync_run_execute(write_feed([product("B-1")], "b.json"))
    source_b = write_feed([product("B-1")], "b.json")
    assert [i["upc"] for i in lines(export("--source", source_b))] == ["B-1"]
    assert [i["upc"] for i in lines(export())] == ["A-1", "A-2", "B-1"]


def test_export_reads_the_catalogue_in_chunks_of_constant_queries(write_feed):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sync_run_execute(write_feed([product(f"C-{i}") for i in range(30)]))
    with CaptureQueriesContext(connection) as small:
        export("--chunk", "1000")
    sync_run_execute(write_feed([product(f"C-{i}") for i in range(90)]))
    with CaptureQueriesContext(connection) as large:
        export("--chunk", "1000")
    assert len(large) == len(small)


def test_csv_export_neutralises_formulas(write_feed):
    sync_run_execute(write_feed([product("F-1", title='=HYPERLINK("http://x")')]))
    rows = list(csv.DictReader(io.StringIO(export("--format", "csv"))))
    assert rows[0]["title"].startswith("'=")


@pytest.mark.django_db(transaction=True)
def test_export_into_a_pipe_closed_early_ends_quietly(write_feed):
    sync_run_execute(write_feed([product(f"P-{n}") for n in range(3000)]), batch_size=1000)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "export_products"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
        cwd=ROOT,
    )
    assert json.loads(process.stdout.readline())["upc"]  # what `head -1` reads
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


def test_the_export_synced_back_into_the_same_shop_leaves_every_item_unchanged(write_feed):
    """The feed that made the shop carried no is_public, attributes or children: the export
    leaves out values at their default, so syncing it back writes nothing."""
    child = product("R-3-a")
    del child["product_class"], child["categories"]
    parent = product("R-3", children=[child])
    del parent["stockrecords"]
    items = [product("R-1"), product("R-2", is_public=False, description=""), parent]
    items += [product("R-4", barcode="4006381333931"), product("R-5", barcode="")]
    first = sync_run_execute(write_feed(items, "shop.json"))
    assert (first.created, first.failed) == (5, 0)

    again = sync_run_execute(write_feed(lines(export("--format", "jsonl")), "export.json"))

    assert (again.items, again.unchanged, again.updated, again.failed) == (5, 5, 0, 0)
    assert Product.objects.count() == 6


def upcs_by_key() -> dict:
    """Each product's UPC by its key; None for no UPC (NULL: Oscar reads it as "")."""
    without = set(Product.objects.filter(upc__isnull=True).values_list("pk", flat=True))
    rows = Product.objects.values_list("pk", "productsync_state__sync_key", "upc")
    return {key: None if pk in without else upc for pk, key, upc in rows}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_keys_and_barcodes_survive_export_and_reimport(fmt, write_feed, tmp_path):
    """Issue 27: an item's upc is its product's key, its barcode the UPC (empty: none). The
    export names the barcode only where the UPC is not the key (in CSV the cell repeats the
    key), so an empty shop gets back every key and UPC. (CSV has no children.)"""
    items = [product("K-1"), product("K-2", barcode=""), product("K-3", barcode="4006381333931")]
    expected = {"K-1": "K-1", "K-2": None, "K-3": "4006381333931"}
    if fmt == "jsonl":
        child = product("K-4-a", barcode="")
        del child["product_class"], child["categories"]
        parent = product("K-4", barcode="0012345678905", children=[child])
        del parent["stockrecords"]
        items.append(parent)
        expected |= {"K-4": "0012345678905", "K-4-a": None}
    first, _ = round_trip(write_feed(items, "shop.json"), tmp_path, fmt)
    assert upcs_by_key() == expected
    if fmt == "jsonl":
        barcodes = {item["upc"]: item.get("barcode") for item in lines(first)}
        assert barcodes == {"K-1": None, "K-2": "", "K-3": "4006381333931", "K-4": "0012345678905"}
        [child_out] = lines(first)[-1]["children"]
        assert (child_out["upc"], child_out["barcode"]) == ("K-4-a", "")
    else:
        barcodes = {row["upc"]: row["barcode"] for row in csv.DictReader(io.StringIO(first))}
        assert barcodes == {"K-1": "K-1", "K-2": "", "K-3": "4006381333931"}
