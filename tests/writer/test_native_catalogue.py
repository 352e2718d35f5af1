"""What the writer does for a catalogue that looks native: a product type is one class whose
stock tracking an untracked product turns off, attributes keep the names shoppers read, and
children have images of their own."""

import io

import pytest
from oscar.core.loading import get_model
from PIL import Image

from productsync.services import sync_run_execute
from tests.conftest import product

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductAttribute = get_model("catalogue", "ProductAttribute")


def tracked(upc: str, track: bool) -> dict:
    return product(upc, product_class="Shirts", class_options={"track_stock": track})


@pytest.mark.parametrize("first_tracked", [True, False])
def test_a_type_with_an_untracked_product_is_one_class_that_does_not_track_stock(
    write_feed, first_tracked
):
    items = [tracked("A", first_tracked), tracked("B", not first_tracked), tracked("C", True)]

    run = sync_run_execute(write_feed(items), batch_size=1)

    assert (run.created, run.failed) == (3, 0)
    assert list(ProductClass.objects.values_list("name", "track_stock")) == [("Shirts", False)]
    # Tracking is never turned back on by a run (a run in another process may have turned it
    # off), only in the dashboard; a new class takes its first item's tracking.
    again = [{**tracked(upc, True), "title": "Changed"} for upc in ("A", "C")]
    again.append({**tracked("D", True), "product_class": "Hats"})
    sync_run_execute(write_feed(again), batch_size=1)
    assert dict(ProductClass.objects.values_list("name", "track_stock")) == {
        "Shirts": False,
        "Hats": True,
    }


def test_attributes_are_named_for_shoppers_and_a_renamed_one_is_kept(write_feed):
    def item(upc: str) -> dict:
        return product(
            upc,
            attributes={"weight": "0.5 kg", "fit": "Slim", "vendor": "Acme"},
            attribute_types={"weight": "text", "fit": "text", "vendor": "text"},
            attribute_names={"weight": "Weight", "fit": "Fit", "vendor": "Vendor"},
        )

    sync_run_execute(write_feed([product("A", attributes={"vendor": "Acme"})]))
    assert not ProductAttribute.objects.exists()  # no attribute created undeclared
    sync_run_execute(write_feed([item("A")]))
    names = dict(ProductAttribute.objects.values_list("code", "name"))
    assert names == {"weight": "Weight", "fit": "Fit", "vendor": "Vendor"}
    ProductAttribute.objects.filter(code="fit").update(name="Passform")  # the shop's own
    ProductAttribute.objects.filter(code="weight").update(name="weight")  # named as before
    sync_run_execute(write_feed([item("A"), item("B")]))
    names = dict(ProductAttribute.objects.values_list("code", "name"))
    assert names == {"weight": "Weight", "fit": "Passform", "vendor": "Vendor"}


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(out, "PNG")
    return out.getvalue()


def test_children_get_their_own_images_retried_while_unchanged(write_feed, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    (tmp_path / "red.png").write_bytes(png("red"))
    child = {"upc": "T-red", "title": "Tee - Red", "images": ["red.png"]}
    blue = {"upc": "T-blue", "title": "Tee - Blue", "images": ["blue.png"]}
    tee = product("T", images=["red.png"], stockrecords=[], children=[child, blue])
    source = write_feed([tee])

    run = sync_run_execute(source)

    assert (run.created, run.warnings) == (1, 1)  # blue.png is not there yet
    assert "'blue.png' of product 'T-blue'" in run.notes[0]
    red = Product.objects.get(upc="T-red")
    assert red.primary_image().original.name.endswith(".png")
    assert not Product.objects.get(upc="T-blue").images.exists()
    (tmp_path / "blue.png").write_bytes(png("blue"))
    run = sync_run_execute(source)
    assert (run.unchanged, run.warnings) == (1, 0)
    assert Product.objects.get(upc="T-blue").images.count() == 1


def test_a_child_not_carrying_images_keeps_them(write_feed, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    (tmp_path / "red.png").write_bytes(png("red"))
    child = {"upc": "T-red", "title": "Tee - Red", "images": ["red.png"]}
    tee = product("T", stockrecords=[], children=[child])
    assert sync_run_execute(write_feed([tee])).created == 1
    assert Product.objects.get(upc="T-red").images.count() == 1

    retitled = {**tee, "title": "Tee v2", "children": [{"upc": "T-red", "title": "Tee - Red"}]}
    run = sync_run_execute(write_feed([retitled], "again.json"))

    assert run.updated == 1
    assert Product.objects.get(upc="T-red").images.count() == 1
