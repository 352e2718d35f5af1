"""Typed attributes: every Oscar attribute type from Oscar's productattributes.json, errors
that name the attribute, created attributes and options."""

import datetime as dt

import pytest
from oscar.core.loading import get_model

from productsync.attribute_values import attribute_value
from productsync.services import sync_run_execute
from tests.conftest import product
from tests.oscar_catalogue import Fixture

Product = get_model("catalogue", "Product")
ProductAttribute = get_model("catalogue", "ProductAttribute")
AttributeOption = get_model("catalogue", "AttributeOption")


@pytest.fixture
def catalogue(db):
    fixture = Fixture("productattributes.json")
    fixture.create_schema()
    return fixture


def test_every_attribute_type_of_oscars_fixture_is_synced(catalogue, write_feed):
    run = sync_run_execute(write_feed(catalogue.feed()))

    assert (run.status, run.created) == ("succeeded", 4)
    serious = Product.objects.get(upc="1234tyser")
    attr = serious.attr
    assert attr.subtitle == "kekjo"
    assert attr.facets == 4
    assert attr.available is True
    assert attr.hypothenusa == 2.4567
    assert attr.additional_info.startswith('<p style="margin:0px;')  # sanitised, style kept
    assert attr.releasedate == dt.date(2018, 11, 16)
    assert attr.starttime == dt.datetime(2018, 11, 16, 9, 15, tzinfo=dt.UTC)
    assert attr.kind.option == "bombastic"
    assert sorted(o.option for o in attr.subkinds) == ["grand", "megalomane", "verocious"]
    second = Product.objects.get(upc="368yhfjkf")
    assert (second.attr.available, second.attr.facets, second.attr.henkie) == (False, 8, "bah bah")
    # Same code, two classes: each product gets its own class's attribute.
    bikini = Product.objects.get(upc="673873")
    assert bikini.attribute_values.get().attribute.product_class.name == "Spullen"
    # Oscar's own summary of the values, as the product page shows them.
    summary = {v.attribute.code: v.value_as_text for v in serious.get_attribute_values()}
    assert summary["subkinds"] == "grand, verocious, megalomane"
    assert summary["available"] == "Yes"


def test_changed_and_nulled_values_are_rewritten(catalogue, write_feed):
    feed = catalogue.feed()
    sync_run_execute(write_feed(feed))
    serious = feed[2]["attributes"]
    serious.update(facets="12", kind="grand", subkinds=["omnimous"], available=None)

    run = sync_run_execute(write_feed(feed))

    assert (run.updated, run.unchanged) == (1, 3)
    attr = Product.objects.get(upc="1234tyser").attr
    assert (attr.facets, attr.kind.option) == (12, "grand")
    assert [o.option for o in attr.subkinds] == ["omnimous"]
    assert not hasattr(attr, "available")


@pytest.mark.parametrize(
    "code, value, message",
    [
        ("facets", "many", "expected an integer (integer attribute), got 'many'"),
        ("facets", 2.5, "expected an integer (integer attribute), got 2.5"),
        ("hypothenusa", True, "expected a number (float attribute), got True"),
        ("available", "perhaps", "expected true or false (boolean attribute), got 'perhaps'"),
        ("releasedate", "16/11/2018", "expected a date (YYYY-MM-DD) (date attribute), got"),
        ("subkinds", "grand", "expected a list of option names (multi_option attribute)"),
        ("subtitle", ["a"], "expected text (text attribute), got ['a']"),
        ("kind", "tiny", "'tiny' is not an option of group 'kind'"),
        ("colour", "red", "product class 'serious' has no attribute 'colour'"),
    ],
)
def test_a_value_that_does_not_fit_fails_the_item_naming_the_attribute(
    catalogue, write_feed, code, value, message
):
    feed = catalogue.feed()
    feed[2]["attributes"][code] = value

    run = sync_run_execute(write_feed(feed))

    failure = run.failure_set.get()
    assert (failure.upc, failure.field) == ("1234tyser", f"attributes.{code}")
    assert failure.message.startswith(f"attributes.{code}: {message}")
    assert run.created == 3
    assert not Product.objects.filter(upc="1234tyser").exists()


def test_unknown_codes_and_options_are_created_when_the_settings_allow(
    catalogue, write_feed, settings
):
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "CREATE_ATTRIBUTES": True,
        "CREATE_ATTRIBUTE_OPTIONS": True,
    }
    feed = catalogue.feed()
    feed[2]["attributes"].update(colour="Red", pages=352, subkinds=["grand", "tiny"])

    run = sync_run_execute(write_feed(feed))

    assert (run.created, run.failed) == (4, 0)
    colour = ProductAttribute.objects.get(code="colour")
    assert (colour.type, colour.product_class.name) == ("text", "serious")
    attr = Product.objects.get(upc="1234tyser").attr
    assert (attr.colour, attr.pages) == ("Red", "352")
    assert sorted(o.option for o in attr.subkinds) == ["grand", "tiny"]
    assert AttributeOption.objects.filter(group__name="kind", option="tiny").count() == 1


def test_attributes_on_flat_products_of_a_new_class(db, write_feed, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREATE_ATTRIBUTES": True}
    run = sync_run_execute(write_feed([product("B1", attributes={"isbn": "978-0131103627"})]))
    assert run.created == 1
    assert Product.objects.get(upc="B1").attr.isbn == "978-0131103627"


def test_attribute_value_conversion_rules():
    assert attribute_value("integer", " 42 ") == 42
    assert attribute_value("integer", 3.0) == 3
    assert attribute_value("float", "2.5") == 2.5
    assert attribute_value("boolean", "yes") is True
    assert attribute_value("text", 352) == "352"
    assert attribute_value("multi_option", ["a", "b", "a"]) == ["a", "b"]
    naive = attribute_value("datetime", "2026-01-31T10:00:00")
    assert naive.tzinfo is not None
    for kind, value in [("integer", 2**31), ("float", "nan"), ("integer", True), ("date", 5)]:
        with pytest.raises(ValueError):
            attribute_value(kind, value)
    with pytest.raises(ValueError, match="attributes of type 'file' cannot be synced"):
        attribute_value("file", "x.pdf")


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"bad-code": 1}, "attributes.bad-code: 'bad-code' is not in the expected form"),
        ({"size": {"eu": 42}}, "attributes.size: expected text, a number, true or false, a list"),
    ],
)
def test_attribute_shape_is_checked_with_the_record(db, write_feed, attributes, message):
    run = sync_run_execute(write_feed([product("B1", attributes=attributes)]))
    assert run.failure_set.get().message.startswith(message)
