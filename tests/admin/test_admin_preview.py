"""The preview page as a shop team reads it: what each created item would be (title, class,
price and stock, children), what a stock file changes (old and new values), and a search by
UPC, SKU or title that escapes what it shows and keeps its pages."""

import pytest

from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.admin.test_admin_import import jsonl, run_queued, upload, url
from tests.conftest import product

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'


def preview_page(client, content: bytes, query: str = "", **fields) -> str:
    assert upload(client, content, **fields).status_code == 302
    [run_id] = run_queued()
    return client.get(url("change", run_id) + query).content.decode()


def test_a_first_import_preview_shows_title_class_price_stock_and_children(runner):
    parent = product("TEE", title=f"Tee {HOSTILE}", product_class="Shirts", stockrecords=[])
    parent["children"] = [
        {"upc": f"TEE-{size}", "stockrecords": [product(f"T{size}")["stockrecords"][0]]}
        for size in "SML"
    ]
    html = preview_page(runner, jsonl([product("BOOK"), parent]))
    row = html[html.index('id="item-1"') : html.index('id="failures"')]  # the last item
    assert "<script>alert" not in html
    assert "Tee &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in row
    for field, value in [
        ("product_class", "&#x27;Shirts&#x27;"),
        ("children", "3"),
        ("children[TEE-S].stockrecords[Acme Books/SKU-TS].price", "&#x27;10.00&#x27;"),
        ("children[TEE-S].stockrecords[Acme Books/SKU-TS].num_in_stock", "5"),
    ]:
        assert f'<th class="ps-wrap">{field}</th><td class="ps-wrap" colspan="2">' in row
        assert f'<ins class="ps-new">{value}</ins>' in row
    assert '<span class="ps-title">Product BOOK</span>' in html
    assert "stockrecords[Acme Books/SKU-BOOK].price" in html


def test_a_stock_file_preview_shows_old_and_new_price_and_stock(runner, write_feed):
    sync_run_execute(write_feed([product("A"), product("B")]))
    csv = b"sku,price,num_in_stock\nSKU-A,12.50,2\nSKU-B,10.00,5\n"
    html = preview_page(
        runner, csv, name="stock.csv", kind="stock", partner="Acme Books", format="csv"
    )
    assert '<th class="ps-wrap">stockrecords[Acme Books/SKU-A].price</th>' in html
    assert '<del class="ps-old">&#x27;10.00&#x27;</del>' in html
    assert '<ins class="ps-new">&#x27;12.50&#x27;</ins>' in html
    assert '<del class="ps-old">5</del></td><td class="ps-wrap"><ins class="ps-new">2</ins>' in html
    assert SyncRun.objects.get(dry_run=True).updated == 1


def test_the_preview_is_searched_by_upc_sku_or_title_and_keeps_the_search_on_its_pages(
    runner,
):
    feed = [product(f"P-{i}") for i in range(160)]
    feed.append(product("Z", title=f"Zebra {HOSTILE}"))
    assert upload(runner, jsonl(feed)).status_code == 302
    [run_id] = run_queued()
    page = url("change", run_id)

    by_sku = runner.get(page + "?q=sku-p-11").content.decode()
    assert 'id="item-11"' in by_sku and 'id="item-110"' in by_sku
    assert 'id="item-12"' not in by_sku and 'id="item-1"' not in by_sku
    by_title = runner.get(page + "?q=zebra+%3Cscript").content.decode()
    assert 'id="item-160"' in by_title and 'id="item-0"' not in by_title
    assert "<script>alert" not in by_title
    assert 'value="zebra &lt;script"' in by_title  # the search, escaped in its field
    many = runner.get(page + "?q=P-1&outcome=created").content.decode()
    assert "page 1 of 2 (71 in all)" in many  # P-1, P-10..19, P-100..159
    assert "?outcome=created&amp;q=P-1&amp;items=2#items" in many
    second = runner.get(page + "?q=P-1&outcome=created&items=2").content.decode()
    assert 'id="item-159"' in second and 'id="item-2"' not in second
    none = runner.get(page + "?q=" + "x" * 5000).content.decode()
    assert "No recorded items found by" in none and "x" * 101 not in none
