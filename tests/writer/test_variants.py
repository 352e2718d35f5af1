"""Parents and children: Oscar's T-shirt catalogue synced from a feed, re-synced, and refused."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from oscar.core.loading import get_class, get_model

from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.oscar_catalogue import Fixture

Product = get_model("catalogue", "Product")
AttributeOption = get_model("catalogue", "AttributeOption")
Selector = get_class("partner.strategy", "Selector")


@pytest.fixture
def tshirts(db):
    fixture = Fixture("child_products.json")
    fixture.create_schema()
    return fixture


def test_oscar_child_products_land_as_parents_and_children(tshirts, write_feed):
    run = sync_run_execute(write_feed(tshirts.feed()), batch_size=2)

    assert (run.status, run.created, run.failed, run.batches) == ("succeeded", 3, 0, 2)
    products = tshirts["catalogue.product"]
    for pk, f in products.items():
        product = Product.objects.get(upc=tshirts.upc(pk))
        product.clean()  # Oscar's own structure rules hold
        assert product.structure == f["structure"]
        assert product.slug == f["slug"]
        if f["structure"] == "child":
            assert product.parent.upc == tshirts.upc(f["parent"])
            assert product.product_class is None
            assert not product.categories.exists()
            assert product.get_title() == products[f["parent"]]["title"]
            assert product.attr.size.option == tshirts.attributes(pk)["size"]
        else:
            assert product.product_class.name == "T-shirt"
            assert [c.name for c in product.categories.all()] == ["Clothing"]
            assert not product.stockrecords.exists()
    for f in tshirts["partner.stockrecord"].values():
        child = Product.objects.get(upc=tshirts.upc(f["product"]))
        record = child.stockrecords.get()
        assert (record.partner.name, record.partner_sku) == ("Clothing partner", f["partner_sku"])
        assert (record.price, record.num_in_stock) == (Decimal(f["price"]), f["num_in_stock"])

    # What a customer sees: a parent's price and availability come from its children.
    strategy = Selector().strategy()
    django_tee = strategy.fetch_for_parent(Product.objects.get(title="Django T-shirt"))
    assert django_tee.availability.is_available_to_buy
    assert django_tee.price.excl_tax == Decimal("15")
    oscar_tee = strategy.fetch_for_parent(Product.objects.get(title="Oscar T-shirt"))
    assert not oscar_tee.availability.is_available_to_buy


def test_resync_adds_updates_and_hides_children(tshirts, write_feed, settings):
    feed = tshirts.feed()
    source = write_feed(feed)
    sync_run_execute(source)
    django_tee = feed[2]
    assert [c["upc"] for c in django_tee["children"]] == ["oscar-9", "oscar-10", "oscar-11"]
    large = django_tee["children"].pop()
    django_tee["children"][0]["stockrecords"][0]["price"] = "12.50"
    django_tee["children"].append(
        {
            "upc": "django-xl",
            "attributes": {"size": "Extra large"},
            "stockrecords": [{"partner": "Clothing partner", "partner_sku": "tng-xl", "price": 17}],
        }
    )
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREATE_ATTRIBUTE_OPTIONS": True}

    run = sync_run_execute(write_feed(feed))

    assert (run.created, run.updated, run.unchanged, run.hidden) == (0, 1, 2, 1)
    parent = Product.objects.get(upc="oscar-8")
    public = parent.children.filter(is_public=True)
    assert sorted(public.values_list("upc", flat=True)) == ["django-xl", "oscar-10", "oscar-9"]
    gone = Product.objects.get(upc="oscar-11")  # hidden, not deleted: orders may point at it
    assert (gone.is_public, gone.parent_id) == (False, parent.pk)
    assert Product.objects.get(upc="oscar-9").stockrecords.get().price == Decimal("12.50")
    xl = Product.objects.get(upc="django-xl")
    assert (xl.attr.size.option, xl.slug) == ("Extra large", "django-t-shirt")
    assert AttributeOption.objects.filter(group__name="Sizes", option="Extra large").exists()

    django_tee["children"].append(large)
    run = sync_run_execute(write_feed(feed))
    assert (run.updated, run.hidden) == (1, 0)
    assert Product.objects.get(upc="oscar-11").is_public


@pytest.mark.parametrize(
    "change, field, message",
    [
        (
            lambda item: item.update(
                stockrecords=[{"partner": "Clothing partner", "partner_sku": "tee"}]
            ),
            "stockrecords",
            "stockrecords: a product with children is an Oscar parent product, which has no "
            "stock records; give them to its children",
        ),
        (
            lambda item: item["children"][1].update(categories=["Clothing > Kids"]),
            "children[1].categories",
            "children[1].categories: a child product ('oscar-10') takes its parent's "
            "categories; remove it from the child",
        ),
        (
            lambda item: item["children"][2].update(product_class="Hoodie"),
            "children[2].product_class",
            "children[2].product_class: a child product ('oscar-11') takes its parent's "
            "product class; remove it from the child",
        ),
        (
            lambda item: item["children"][2].update(upc="oscar-9"),
            "children[2].upc",
            "children[2].upc: 'oscar-9' is also the upc of children[0]",
        ),
        (
            lambda item: item["children"][1]["attributes"].update(size="Huge"),
            "children[1].attributes.size",
            "children[1].attributes.size: 'Huge' is not an option of group 'Sizes' "
            "(PRODUCTSYNC['CREATE_ATTRIBUTE_OPTIONS'] would add it)",
        ),
        (
            lambda item: item["children"][2]["stockrecords"][0].update(partner_sku="clf-med"),
            "children[2].stockrecords.partner_sku",
            "children[2].stockrecords.partner_sku: 'clf-med' of 'Clothing partner' belongs to "
            "product 'oscar-7'",
        ),
    ],
    ids=["parent-stock", "child-categories", "child-class", "child-upc", "option", "sku"],
)
def test_a_bad_child_fails_its_whole_unit_with_one_failure(
    tshirts, write_feed, change, field, message
):
    feed = tshirts.feed()
    change(feed[2])  # the Django T-shirt and its three children

    run = sync_run_execute(write_feed(feed))

    failure = run.failure_set.get()
    assert (failure.position, failure.upc, failure.field) == (2, "oscar-8", field)
    assert failure.message == message
    assert not Product.objects.filter(upc__in=["oscar-8", "oscar-9", "oscar-10"]).exists()
    assert Product.objects.filter(upc__startswith="oscar-").count() == 7  # the other units


def test_a_child_upc_of_another_parent_is_refused(tshirts, write_feed):
    feed = tshirts.feed()
    sync_run_execute(write_feed(feed))
    feed[2]["children"][0]["upc"] = "oscar-6"  # a commandlinefu T-shirt child

    run = sync_run_execute(write_feed(feed[2:]))

    failure = run.failure_set.get()
    assert failure.message == (
        "children[0].upc: 'oscar-6' is already a child of 'oscar-5', not a child of 'oscar-8'"
    )
    assert Product.objects.get(upc="oscar-6").parent.upc == "oscar-5"


def test_a_parent_that_loses_its_children_becomes_standalone(tshirts, write_feed):
    feed = tshirts.feed()
    sync_run_execute(write_feed(feed))
    feed[0]["children"] = []  # given and empty: none (left out, they are left as they are)

    run = sync_run_execute(write_feed(feed))

    assert (run.updated, run.hidden) == (1, 3)
    tee = Product.objects.get(upc="oscar-1")
    assert tee.structure == "standalone"
    assert not tee.children.filter(is_public=True).exists()


def test_command_prints_variant_counts(tshirts, write_feed, capsys):
    source = write_feed(tshirts.feed())
    call_command("sync_products", "--source", source, "--no-progress", "--limit", "2")

    out = capsys.readouterr().out
    assert f"Run {SyncRun.objects.get().pk} succeeded: 2 items, 2 created, 0 updated" in out
    assert Product.objects.filter(structure="child").count() == 5
