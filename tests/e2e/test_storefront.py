"""The demo shop's storefront lists the synced catalogue: all products, each category, search."""

import re

import pytest
from oscar.core.loading import get_model

from productsync.services import sync_run_execute
from tests.conftest import FIXTURES, product

pytestmark = pytest.mark.django_db

Category = get_model("catalogue", "Category")


def titles(html: str) -> list[str]:
    return re.findall(r'<h3[^>]*>\s*<a href="[^"]+" title="([^"]+)"', html)


def test_the_catalogue_page_lists_the_synced_products(client):
    run = sync_run_execute(str(FIXTURES / "products.json"))
    html = client.get("/catalogue/", follow=True).content.decode()
    public = run.created - 7  # 7 products of the demo feed are not public
    assert f"<strong>{public}</strong> results" in html
    assert len(titles(html)) == 20  # Oscar's first page


def test_a_category_page_lists_its_products(client, write_feed):
    sync_run_execute(
        write_feed(
            [
                product("F-1", title="A novel", categories=["Books > Fiction"]),
                product("C-1", title="A manual", categories=["Books > Computing"]),
                product("H-1", title="Hidden", categories=["Books > Fiction"], is_public=False),
            ]
        )
    )
    fiction = Category.objects.get(name="Fiction")
    html = client.get(fiction.get_absolute_url(), follow=True).content.decode()
    assert titles(html) == ["A novel"]
    found = client.get("/search/?q=manual", follow=True).content.decode()
    assert titles(found) == ["A manual"]
