"""Mapping files: foreign exports (oscar-odin's CSV, Medusa's seed) onto our fields."""

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from oscar.core.loading import get_model

from productsync.exceptions import SourceError
from productsync.feeds import FeedOptions, feed_open
from productsync.feeds.mapping import mapping_load
from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.catalogue import catalogue_snapshot
from tests.conftest import ROOT, shared_data

AttributeOption = get_model("catalogue", "AttributeOption")
AttributeOptionGroup = get_model("catalogue", "AttributeOptionGroup")
Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
MAPPINGS = ROOT / "fixtures" / "mappings"


def odin() -> str:
    return str(shared_data("oscar-odin", "products.csv"))


def medusa() -> str:
    return str(shared_data("medusa", "seed.json"))


def mapping_file(tmp_path, fields: dict, **top) -> str:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({**top, "fields": fields}), encoding="utf-8")
    return str(path)


@pytest.mark.django_db
def test_the_oscar_odin_export_syncs_with_its_shipped_mapping():
    run = sync_run_execute(odin(), feed_options={"mapping": str(MAPPINGS / "oscar-odin.toml")})

    # 59 rows; two different macarons share one EAN: the second is refused, not merged.
    assert (run.status, run.items, run.created, run.failed) == (
        "completed_with_failures",
        59,
        58,
        1,
    )
    failure = run.failure_set.get()
    assert (failure.upc, failure.message) == (
        "2100140000002",
        "upc: duplicate of the item at position 1",
    )
    products = catalogue_snapshot()["products"]
    cake = products["5407005642115"]
    assert cake["title"] == "RAW CAKES VANILLE"
    assert cake["product_class"] == "Wholesale food"
    assert cake["categories"] == ["Wholesale > frozen > franchise"]
    assert cake["is_public"] is True
    assert cake["stockrecords"] == [("Odin wholesale", "19860", "41.85", "EUR", None)]
    html = [p for p in products.values() if p["description"].startswith("<table")]
    assert len(html) == 21
    # `[object Object]` columns are unmapped; NaN and empty cells never reach a field.
    assert not any("object Object" in str(p) or "NaN" in str(p) for p in products.values())


def medusa_variants() -> dict[str, list[dict]]:
    """The seed's variants by product handle, read straight from the file."""
    products = json.loads(Path(medusa()).read_text(encoding="utf-8"))["products"]
    return {p["handle"]: p["variants"] for p in products}


def test_the_medusa_seed_syncs_as_parents_and_children(db, settings):
    # The class has no Size or Color attribute yet: the setting creates them as text.
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREATE_ATTRIBUTES": True}
    mapping = {"mapping": str(MAPPINGS / "medusa.toml")}

    run = sync_run_execute(medusa(), feed_options=mapping)

    assert (run.status, run.items, run.created, run.failed) == ("succeeded", 7, 7, 0)
    variants = medusa_variants()
    parents = Product.objects.filter(structure="parent")
    assert sorted(parents.values_list("upc", flat=True)) == sorted(variants)
    assert Product.objects.filter(structure="child").count() == 29
    shirt = parents.get(upc="t-shirt")
    assert (shirt.title, shirt.product_class.name) == ("Medusa T-Shirt", "Apparel & merch")
    assert [c.full_name for c in shirt.categories.all()] == ["Clothing > Shirts"]
    assert not shirt.stockrecords.exists()
    for parent in parents:
        children = {c.upc: c for c in parent.children.all()}
        assert len(children) == len(variants[parent.upc])
        for variant in variants[parent.upc]:
            child = children[f"{parent.upc} / {variant['title']}"]
            record = child.stockrecords.get()
            eur = next(p["amount"] for p in variant["prices"] if p["currency_code"] == "eur")
            assert (record.partner.name, record.partner_sku) == ("Medusa store", child.upc)
            assert (record.price, record.price_currency) == (Decimal(eur) / 100, "EUR")
            assert record.num_in_stock == variant["inventory_quantity"]
    black_xl = Product.objects.get(upc="t-shirt / XL / Black")
    assert (black_xl.attr.Size, black_xl.attr.Color) == ("XL", "Black")
    assert Product.objects.get(upc="coffee-mug / One Size").attr.Size == "One Size"

    again = sync_run_execute(medusa(), feed_options=mapping, full=True)

    assert (again.status, again.created, again.updated, again.unchanged) == (
        "succeeded",
        0,
        0,
        7,
    )


def test_option_attributes_take_medusa_options(db, settings):
    """With Size and Color as option attributes, the variants' values become their options."""
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREATE_ATTRIBUTE_OPTIONS": True}
    apparel = ProductClass.objects.create(name="Apparel & merch")
    for code in ("Size", "Color"):
        group = AttributeOptionGroup.objects.create(name=code)
        apparel.attributes.create(code=code, name=code, type="option", option_group=group)

    run = sync_run_execute(medusa(), feed_options={"mapping": str(MAPPINGS / "medusa.toml")})

    assert (run.status, run.created) == ("succeeded", 7)
    assert Product.objects.get(upc="t-shirt / M / White").attr.Color.option == "White"
    sizes = AttributeOption.objects.filter(group__name="Size").values_list("option", flat=True)
    assert sorted(sizes) == ["L", "M", "One Size", "S", "XL"]


def test_transforms_and_placeholders(tmp_path):
    feed = tmp_path / "export.csv"
    feed.write_text(
        "ref;naam;actief;prijs_cent;groep;sub;omschrijving\n"
        "R1;Kaas;yes;1999;Zuivel;Kaas;NULL\n"
        "R2;Melk;0;250;Zuivel;NaN;[object Object]\n"
        "R3;Boter;TRUE;abc;;;Roomboter\n",
        encoding="utf-8",
    )
    fields = {
        "upc": "ref",
        "title": "naam",
        "description": "omschrijving",
        "product_class": {"value": "Zuivel"},
        "categories": {"join": [{"value": "Winkel"}, "groep", "sub"]},
        "is_public": {"path": "actief", "transform": "boolean"},
        "partner": {"value": "Boer"},
        "partner_sku": "ref",
        "price": {"path": "prijs_cent", "transform": "cents"},
    }
    with feed_open(str(feed), options=FeedOptions(mapping=mapping_file(tmp_path, fields))) as f:
        kaas, melk, boter = [item.payload for item in f]

    assert kaas["description"] == "" and kaas["is_public"] is True
    assert kaas["categories"] == ["Winkel > Zuivel > Kaas"]
    assert kaas["stockrecords"] == [{"partner": "Boer", "partner_sku": "R1", "price": "19.99"}]
    assert melk["is_public"] is False and melk["description"] == ""
    assert melk["categories"] == ["Winkel > Zuivel"]
    assert melk["stockrecords"][0]["price"] == "2.50"
    # Not whole cents: passed on as it is, and the item fails naming its line, column and
    # field, with the source row as its raw payload.
    assert boter.message == (
        "line 4, column 'prijs_cent': stockrecords[0].price: 'abc' is not a number"
    )
    assert (boter.field, boter.upc) == ("stockrecords[0].price", "R3")
    assert json.loads(boter.text)["row"]["prijs_cent"] == "abc"


@pytest.mark.django_db
def test_a_bad_value_after_mapping_fails_its_item_naming_the_field(tmp_path):
    feed = tmp_path / "export.csv"
    feed.write_text("ref,name,cents\nA,Good,100\nB,Bad,abc\n", encoding="utf-8")
    fields = {
        "upc": "ref",
        "title": "name",
        "product_class": {"value": "Thing"},
        "partner": {"value": "P"},
        "partner_sku": "ref",
        "price": {"path": "cents", "transform": "cents"},
    }

    run = sync_run_execute(str(feed), feed_options={"mapping": mapping_file(tmp_path, fields)})

    assert (run.created, run.failed) == (1, 1)
    assert run.failure_set.get().field == "stockrecords[0].price"
    assert Product.objects.get().stockrecords.get().price == Decimal("1.00")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"fields": {"upc": "id", "title": "name"}}, "required fields not mapped: product_class"),
        (
            {"fields": {"upc": "id", "title": "name", "product_class": "c", "colour": "x"}},
            "unknown fields colour",
        ),
        (
            {
                "fields": {
                    "upc": "id",
                    "title": "name",
                    "product_class": {"path": "c", "value": "d"},
                }
            },
            "product_class needs exactly one of path, value or join",
        ),
        (
            {
                "fields": {
                    "upc": "id",
                    "title": "n",
                    "product_class": {"path": "c", "transform": "x"},
                }
            },
            "unknown transform 'x'",
        ),
        ({"upc": "id"}, "expected a [fields] table"),
        (
            {"fields": {"upc": "id", "title": "n", "product_class": "c"}, "children": {}},
            "[children] needs items, the path of the nested array",
        ),
        (
            {
                "fields": {"upc": "id", "title": "n", "product_class": "c"},
                "children": {"items": "variants", "fields": {"title": "name"}},
            },
            "[children]: required fields not mapped: upc",
        ),
        (
            {
                "fields": {
                    "upc": "id",
                    "title": "n",
                    "product_class": "c",
                    "attributes": {"keys": "names"},
                }
            },
            "attributes needs exactly one of path, value or join (and optionally keys with a path",
        ),
    ],
)
def test_a_bad_mapping_is_a_clear_error(tmp_path, mapping, message):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping), encoding="utf-8")

    with pytest.raises(SourceError, match=re.escape(message)):
        mapping_load(str(path))


@pytest.mark.django_db
def test_a_mapping_naming_columns_the_csv_lacks_fails_before_the_first_batch(tmp_path):
    fields = {"upc": "sku", "title": "name", "product_class": {"value": "Food"}}

    with pytest.raises(SourceError, match="the CSV header has no sku column"):
        sync_run_execute(odin(), feed_options={"mapping": mapping_file(tmp_path, fields)})

    run = SyncRun.objects.get()
    assert (run.status, run.batches) == ("failed", 0)


def test_shipped_mappings_load():
    for path in MAPPINGS.iterdir():
        assert mapping_load(str(path)).rules.keys() >= {"upc", "title", "product_class"}
