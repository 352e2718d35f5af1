"""Mapping files: foreign exports (oscar-odin's CSV, Medusa's seed) onto our fields."""

import json
from decimal import Decimal

import pytest
from oscar.core.loading import get_model

from productsync.exceptions import SourceError
from productsync.feeds import feed_open
from productsync.feeds.base import FeedOptions
from productsync.feeds.mapping import mapping_load
from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.catalogue import catalogue_snapshot
from tests.conftest import DATA, ROOT

Product = get_model("catalogue", "Product")
MAPPINGS = ROOT / "fixtures" / "mappings"
ODIN = str(DATA / "oscar-odin" / "products.csv")
MEDUSA = str(DATA / "medusa" / "seed.json")


def mapping_file(tmp_path, fields: dict, **top) -> str:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({**top, "fields": fields}), encoding="utf-8")
    return str(path)


@pytest.mark.django_db
def test_the_oscar_odin_export_syncs_with_its_shipped_mapping():
    run = sync_run_execute(ODIN, feed_options={"mapping": str(MAPPINGS / "oscar-odin.toml")})

    # 59 rows; two different macarons share one EAN: the second is refused, not merged.
    assert (run.status, run.items, run.created, run.failed) == ("partial", 59, 58, 1)
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


@pytest.mark.django_db
def test_the_medusa_seed_syncs_with_its_shipped_mapping():
    run = sync_run_execute(MEDUSA, feed_options={"mapping": str(MAPPINGS / "medusa.toml")})

    assert (run.status, run.items, run.created) == ("succeeded", 7, 7)
    products = catalogue_snapshot()["products"]
    assert sorted(products) == [
        "coffee-mug",
        "hoodie",
        "longsleeve",
        "shorts",
        "sweatpants",
        "sweatshirt",
        "t-shirt",
    ]
    shirt = products["t-shirt"]
    assert shirt["title"] == "Medusa T-Shirt"
    assert shirt["categories"] == ["Clothing > Shirts"]
    # 1950 euro cents of the first variant.
    assert shirt["stockrecords"] == [("Medusa store", "t-shirt", "19.50", "EUR", 100)]
    assert products["coffee-mug"]["stockrecords"][0][2:4] == ("10.00", "EUR")


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
    # Not whole cents: passed on as it is, so validation names the field.
    assert boter["stockrecords"][0]["price"] == "abc"
    assert boter["categories"] == ["Winkel"]


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
    ],
)
def test_a_bad_mapping_is_a_clear_error(tmp_path, mapping, message):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping), encoding="utf-8")

    with pytest.raises(SourceError, match=message.replace("[", r"\[")):
        mapping_load(str(path))


@pytest.mark.django_db
def test_a_mapping_naming_columns_the_csv_lacks_fails_before_the_first_batch(tmp_path):
    fields = {"upc": "sku", "title": "name", "product_class": {"value": "Food"}}

    with pytest.raises(SourceError, match="the CSV header has no sku column"):
        sync_run_execute(ODIN, feed_options={"mapping": mapping_file(tmp_path, fields)})

    run = SyncRun.objects.get()
    assert (run.status, run.batches) == ("failed", 0)


def test_shipped_mappings_load():
    for path in MAPPINGS.iterdir():
        assert mapping_load(str(path)).rules.keys() >= {"upc", "title", "product_class"}
