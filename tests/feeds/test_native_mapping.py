"""Attributes as shoppers read them: names from a mapping's label, labels or a name cell,
values with their units, a weight in grams shown in its unit; mistakes refused on loading."""

import json

import pytest

from productsync.exceptions import SourceError
from productsync.feeds import FeedOptions, feed_open
from productsync.feeds.mapping import mapping_parse

BASE = {"upc": "id", "title": "name", "product_class": {"value": "Thing"}}


def first_item(tmp_path, text: str, **tables) -> dict:
    (tmp_path / "mapping.json").write_text(json.dumps({"fields": BASE, **tables}))
    (tmp_path / "export.csv").write_text(text, encoding="utf-8")
    source, mapping = str(tmp_path / "export.csv"), str(tmp_path / "mapping.json")
    with feed_open(source, count=False, options=FeedOptions(mapping=mapping)) as feed:
        return next(iter(feed)).payload


def test_attributes_carry_the_names_shoppers_read(tmp_path):
    attributes = [
        {"code": "vendor", "label": "Vendor", "path": "vendor"},
        {"name": "n1", "path": "v1", "type": "option"},
        {"pairs": "packed", "labels": {"eco_collection": "Eco Collection"}},
    ]
    payload = first_item(
        tmp_path,
        'id,name,vendor,n1,v1,packed\nA,Shoe,Acme,Shoe size,42,"eco_collection=Yes,fit=Wide"\n',
        attributes=attributes,
    )
    assert payload["attributes"] == {
        "vendor": "Acme",
        "shoe_size": "42",
        "eco_collection": "Yes",
        "fit": "Wide",
    }
    assert payload["attribute_names"] == {
        "vendor": "Vendor",
        "shoe_size": "Shoe size",
        "eco_collection": "Eco Collection",
    }


@pytest.mark.parametrize(
    ("grams", "unit", "shown"),
    [
        ("145", "g", "145 g"),
        ("226.796185", "oz", "8 oz"),
        ("500", "kg", "0.5 kg"),
        ("453.59237", "lb", "1 lb"),
        ("250", "", "250 g"),
        ("0", "kg", None),  # no weight entered
        ("1E+40", "kg", "1E+40 g"),  # too big to convert: as given, in grams
    ],
)
def test_a_weight_in_grams_is_shown_in_its_unit(tmp_path, grams, unit, shown):
    rule = {"code": "weight", "label": "Weight", "path": "g", "unit": {"path": "u"}, "grams": True}
    payload = first_item(tmp_path, f"id,name,g,u\nA,Hat,{grams},{unit}\n", attributes=[rule])
    assert payload.get("attributes", {}).get("weight") == shown


def test_a_value_with_a_constant_unit_is_written_plainly(tmp_path):
    rule = {"code": "weight", "label": "Weight", "path": "w", "unit": "lbs"}
    payload = first_item(tmp_path, "id,name,w\nA,Cap,.5\nB,Belt,\n", attributes=[rule])
    assert payload["attributes"] == {"weight": "0.5 lbs"}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"code": "w", "path": "w", "unit": "kg", "type": "float"}, "a value with a unit is text"),
        ({"code": "w", "path": "w", "grams": True}, "grams is true or false, with a unit"),
        ({"code": "w", "path": "w", "label": 3}, "label is the attribute's name for shoppers"),
        ({"pairs": "p", "labels": ["Size"]}, "labels is a table of attribute codes to names"),
    ],
)
def test_a_mapping_with_a_bad_label_or_unit_is_refused(rule, message):
    with pytest.raises(SourceError, match=message):
        mapping_parse({"fields": BASE, "attributes": [rule]}, "mapping m")


def test_a_number_too_long_to_write_plainly_is_kept_as_given(tmp_path):
    rule = {"code": "weight", "label": "Weight", "path": "w", "unit": "kg"}
    payload = first_item(tmp_path, "id,name,w\nA,Hat,1E+999999999\n", attributes=[rule])
    assert payload["attributes"]["weight"] == "1E+999999999 kg"
