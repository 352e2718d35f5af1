"""The presets give every product and variant a barcode (issue 27): the platform's barcode
(the UPC customers see), or "" where the platform has none, so the handle, SKU or
`handle / options` key is never shown as a UPC. These read the mapped items (before the
writer): the platforms' exports in ../shared/data, copies of them with barcodes written in,
and the Google Merchant Center fixtures."""

import csv
from pathlib import Path

import pytest

from productsync.feeds import feed_open
from productsync.feeds.mapping.rules import TRANSFORMS
from productsync.feeds.stream import FeedOptions
from tests.conftest import FIXTURES, shared_data

# An Excel-damaged barcode: the cell shows the number in exponent notation, its digits lost.
DAMAGED = "3.65275E+11"
WOO_GTIN = "GTIN, UPC, EAN, or ISBN"


def read(path: Path, preset: str | None = None) -> tuple[dict, list[str]]:
    """The items by upc, with their children by upc, and the run's notes."""
    options = FeedOptions(preset=preset) if preset else None
    with feed_open(str(path), count=False, options=options) as feed:
        items = [item.payload for item in feed]
        notes = list(feed.notes)
    assert all(isinstance(item, dict) for item in items), items
    return {item["upc"]: item for item in items}, notes


def barcodes(items: dict) -> dict[str, str]:
    """Every product's and child's barcode, by upc (a field not carried reads as None)."""
    out = {}
    for upc, item in items.items():
        out[upc] = item.get("barcode")
        out |= {child["upc"]: child.get("barcode") for child in item.get("children", ())}
    return out


def rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def write(path: Path, source: list[dict], columns: list[str]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(source)
    return path


def not_imported(notes: list[str]) -> str:
    (listed,) = [note for note in notes if note.startswith("columns not imported: ")]
    return listed


def test_shopify_sample_barcodes_damaged_by_a_spreadsheet_give_no_upc():
    path = shared_data("shopify/product_template.csv")
    source = rows(path)
    # The sample's barcodes are all damaged: none of them is a barcode any more.
    assert {r["Variant Barcode"] for r in source if r["Option1 Value"]} >= {DAMAGED}
    assert all("E+" in r["Variant Barcode"] for r in source if r["Option1 Value"])

    items, notes = read(path)

    got = barcodes(items)
    assert len(got) == 3 + 15  # 3 products, 15 variants of two of them, the hat standalone
    assert set(got.values()) == {""}
    assert "Variant Barcode" not in not_imported(notes)


def test_shopify_variants_and_a_default_title_product_carry_their_barcodes(tmp_path):
    source = rows(shared_data("shopify/product_template.csv"))
    written = {
        "SRT_COT_222": "0012345678905",
        "PNT_DEN_305": " 4006381333931 ",
        "SRT_COT_111": "",
        "HAT_GRY_275": "9781234567897",
    }
    for r in source:
        r["Variant Barcode"] = written.get(r["Variant SKU"], r["Variant Barcode"])

    items, _ = read(write(tmp_path / "barcodes.csv", source, list(source[0])))

    got = barcodes(items)
    assert {sku: got[sku] for sku in ("SRT_COT_222", "PNT_DEN_305", "SRT_COT_111")} == {
        "SRT_COT_222": "0012345678905",
        "PNT_DEN_305": "4006381333931",  # the cell's spaces left out
        "SRT_COT_111": "",  # an empty cell
    }
    assert got["SRT_COT_122"] == ""  # still damaged: "4.6347E+11"
    # A product with variants has no barcode of its own, though its first row carries the
    # first variant's: only a "Default Title" product is its variant and takes its barcode.
    assert (got["example-shirt"], got["example-pants"]) == ("", "")
    assert got["example-hat"] == "9781234567897"
    assert "children" not in items["example-hat"]


def test_an_older_shopify_export_of_empty_barcodes_never_shows_its_keys_as_upcs():
    path = shared_data("shopify/apparel.csv")
    assert {r["Variant Barcode"] for r in rows(path)} == {""}

    items, _ = read(path)

    got = barcodes(items)
    # No SKUs: a variant's key is `handle / option values`; no customer sees it as a UPC.
    assert "classic-varsity-top / Small" in got
    assert set(got.values()) == {""}


def test_a_shopify_export_without_the_barcode_column_still_gives_none(tmp_path):
    source = rows(shared_data("shopify/product_template.csv"))
    columns = [c for c in source[0] if c != "Variant Barcode"]

    items, notes = read(write(tmp_path / "no-barcode-column.csv", source, columns))

    got = barcodes(items)
    assert len(got) == 18
    assert set(got.values()) == {""}  # carried, as none: not left to the key
    assert not [note for note in notes if "Variant Barcode" in note]


def test_woocommerce_items_carry_their_gtin_or_none():
    path = shared_data("woocommerce/sample_products.csv")
    assert WOO_GTIN not in rows(path)[0]  # the sample predates WooCommerce 9.2's column

    items, _ = read(path)

    got = barcodes(items)
    assert {"woo-vneck-tee", "woo-vneck-tee-red", "woo-tshirt"} <= set(got)
    assert set(got.values()) == {""}


def test_a_newer_woocommerce_export_gives_its_gtin_column_as_the_barcode(tmp_path):
    source = rows(shared_data("woocommerce/sample_products.csv"))
    written = {"woo-vneck-tee-red": "0012345678912", "woo-tshirt": "4.6347E+11"}
    written["woo-hoodie-blue"] = "9781234567897"
    for r in source:
        r[WOO_GTIN] = written.get(r["SKU"], "")
    columns = [c for c in source[0] if c != WOO_GTIN]
    columns.insert(columns.index("SKU") + 1, WOO_GTIN)  # where WooCommerce 9.2 writes it

    items, notes = read(write(tmp_path / "woo-9.2.csv", source, columns), "woocommerce")

    got = barcodes(items)
    assert (got["woo-vneck-tee-red"], got["woo-hoodie-blue"]) == ("0012345678912", "9781234567897")
    assert got["woo-tshirt"] == ""  # damaged: exponent notation
    assert (got["woo-vneck-tee"], got["woo-vneck-tee-green"]) == ("", "")
    assert WOO_GTIN not in not_imported(notes)


def test_magento_products_and_children_have_no_barcode():
    items, _ = read(shared_data("magento/configurable_products.csv"))

    got = barcodes(items)
    assert {"MH01", "MH01-XS-Black"} <= set(got)
    assert len(got) == 147 + 1847
    assert set(got.values()) == {""}


@pytest.mark.parametrize(
    "name",
    [
        "rss-apparel-with-variants.xml",
        "atom-apparel-with-variants.xml",
        "tsv-apparel-with-variants.tsv",
    ],
)
def test_a_google_item_s_gtin_is_its_barcode(name):
    items, _ = read(FIXTURES / "google" / name, "google")

    assert barcodes(items) == {
        "4006381333931": "4006381333931",  # standalone, keyed by its gtin
        "TEE-CLASSIC": "",  # a parent: an item_group_id, no gtin of its own
        "0012345678905": "0012345678905",
        "0012345678912": "0012345678912",
        "0012345678929": "0012345678929",
        "CAP-001": "",  # no gtin: keyed by its id, never shown as a UPC
        "SOCK-3PK": "",
    }


def test_a_damaged_gtin_in_google_s_tab_separated_form_gives_none(tmp_path):
    tsv = (FIXTURES / "google" / "tsv-apparel-with-variants.tsv").read_text(encoding="utf-8")
    damaged = tmp_path / "damaged.tsv"
    damaged.write_text(tsv.replace("\t0012345678912\t", "\t1.23457E+10\t"), encoding="utf-8")

    items, _ = read(damaged, "google")

    got = barcodes(items)
    assert got["1.23457E+10"] == ""  # its key is what the feed says; no UPC shown
    assert got["0012345678905"] == "0012345678905"


def test_the_barcode_transform_drops_only_a_number_in_exponent_notation():
    barcode = TRANSFORMS["barcode"]
    assert [barcode(v) for v in ("3.65275E+11", "4,6347e11", "-1E-3", " 1e5 ")] == [""] * 4
    kept = ["0012345678905", "978-3-16-148410-0", "E+11", "12E", "1.5E+11x", "ABC123"]
    assert [barcode(v) for v in kept] == kept
    assert barcode("  0012  ") == "0012"
    hostile = "9" * 200_000 + "E"  # no backtracking: the possessive pattern fails at once
    assert barcode(hostile) == hostile
