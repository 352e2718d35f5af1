"""Numbers as people write them: a price or a count written "1_000", "+5" or in the digits of
another script ("١٢.٥٠") is refused with the value quoted, never read as 1000, 5 or 12.50."""

import json

import pytest
from oscar.core.loading import get_model

from productsync.feeds import FeedOptions, feed_open
from productsync.services import sync_run_execute

StockRecord = get_model("partner", "StockRecord")

LAX = ["1_000", "١٢.٥٠", "+5", " +5"]


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.django_db
def test_lax_prices_and_counts_in_our_csv_are_refused(tmp_path):
    rows = [f"P{i},Pan,Pans,Acme,P{i},{price},3" for i, price in enumerate(LAX)]
    rows += [f"Q{i},Pan,Pans,Acme,Q{i},1.00,{count}" for i, count in enumerate(LAX)]
    rows += ["OK,Pan,Pans,Acme,OK, 12.50 ,7"]
    header = "upc,title,product_class,partner,partner_sku,price,num_in_stock\n"
    feed = write(tmp_path, "feed.csv", header + "\n".join(rows) + "\n")

    run = sync_run_execute(feed, batch_size=100)

    messages = dict(run.failure_set.values_list("upc", "message"))
    for i, text in enumerate(LAX):
        assert messages[f"P{i}"] == f"stockrecords[0].price: {text!r} is not a number"
        assert messages[f"Q{i}"] == f"stockrecords[0].num_in_stock: {text!r} is not a whole number"
    assert StockRecord.objects.get().price == 12.5 and run.created == 1


def test_the_cents_transform_leaves_lax_numbers_for_validation_to_refuse(tmp_path):
    feed = write(tmp_path, "export.csv", "id,cents\nA,1_000\nB,+500\nC,1250\n")
    fields = {
        "upc": "id",
        "title": {"value": "Pan"},
        "product_class": {"value": "Pans"},
        "partner": {"value": "Acme"},
        "partner_sku": "id",
        "price": {"path": "cents", "transform": "cents"},
    }
    mapping = write(tmp_path, "mapping.json", json.dumps({"fields": fields}))

    with feed_open(feed, options=FeedOptions(mapping=mapping)) as f:
        a, b, c = [item.payload for item in f]

    assert a.message == "line 2, column 'cents': stockrecords[0].price: '1_000' is not a number"
    assert b.message == "line 3, column 'cents': stockrecords[0].price: '+500' is not a number"
    assert c["stockrecords"][0]["price"] == "12.50"


@pytest.mark.django_db
def test_lax_numbers_in_integer_attributes_are_refused(tmp_path, write_feed):
    items = [
        {"upc": f"A{i}", "title": "Pan", "product_class": "Pans", "attributes": {"size": size}}
        for i, size in enumerate(["1_000", "+5", "١٢", "12"])
    ]
    items[0]["attribute_types"] = {"size": "integer"}
    run = sync_run_execute(write_feed(items), batch_size=1)

    messages = dict(run.failure_set.values_list("upc", "message"))
    assert set(messages) == {"A0", "A1", "A2"}, messages
    assert all("size" in m for m in messages.values()), messages
