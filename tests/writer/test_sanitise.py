"""HTML from feeds is sanitised before it is stored: the formatting of a description kept,
script dropped; products written before are cleaned on their next write; the storefront's
product page, rendered in Chromium, runs none of a feed's script."""

from hashlib import blake2b

import pytest
from django.db import connection
from oscar.core.loading import get_model

from productsync.services import sync_run_execute
from tests.conftest import product
from tests.oscar_catalogue import Fixture

Product = get_model("catalogue", "Product")

FORMATTING = (
    "<h2>About</h2><p>A <b>bold</b>, <i>italic</i>, <strong>strong</strong> and <em>emphasised"
    '</em> book, <a href="https://localhost/more" rel="noopener noreferrer">more</a>, '
    '<a href="mailto:shop@example.com" rel="noopener noreferrer">mail us</a>.</p>'
    "<ul><li>one</li><li>two</li></ul><ol><li>first</li></ol>"
    "<table><thead><tr><th>size</th></tr></thead><tbody><tr><td>A5</td></tr></tbody></table>"
    '<p><img src="https://cdn.localhost/cover.png" alt="cover"><img src="/media/local.png"><br>'
    "</p><blockquote>quoted</blockquote>"
)
HOSTILE = (
    "<script>document.title = 'pwned'</script>"
    "<p onclick=\"document.title = 'pwned'\">Click</p>"
    '<img src="/no-such.png" onerror="document.title = \'pwned\'">'
    "<a href=\"javascript:document.title = 'pwned'\">link</a>"
    '<a href=" JaVaScRiPt:alert(1)">spaced</a>'
    '<img src="data:image/svg+xml;base64,PHN2Zy8+">'
    "<svg><script>document.title = 'pwned'</script></svg>"
    "<iframe src=\"javascript:document.title = 'pwned'\"></iframe>"
    "<style>body { display: none }</style>"
    '<form action="/"><input name="q"></form>'
)
CLEAN = (
    '<p>Click</p><img src="/no-such.png"><a rel="noopener noreferrer">link</a>'
    '<a rel="noopener noreferrer">spaced</a><img>'
)


def description(upc: str) -> str:
    return Product.objects.get(upc=upc).description


@pytest.mark.django_db
def test_a_hostile_description_is_stored_clean_and_formatting_is_kept(write_feed):
    child = {"upc": "V1", "description": HOSTILE}
    run = sync_run_execute(
        write_feed(
            [
                product("X", description=HOSTILE),
                product("F", description=FORMATTING),
                product("P", description='5 > 3 & plain "text"'),
                product("PARENT", stockrecords=[], children=[child]),
            ]
        )
    )

    assert (run.status, run.created) == ("succeeded", 4)
    assert description("X") == CLEAN
    assert description("V1") == CLEAN
    assert description("F") == FORMATTING
    assert description("P") == '5 > 3 & plain "text"'


@pytest.mark.django_db
def test_a_rich_text_attribute_is_sanitised(write_feed):
    fixture = Fixture("productattributes.json")
    fixture.create_schema()
    feed = fixture.feed()
    serious = next(item for item in feed if item["upc"] == "1234tyser")
    original = serious["attributes"]["additional_info"]
    serious["attributes"]["additional_info"] = original + HOSTILE

    run = sync_run_execute(write_feed(feed))

    assert run.status == "succeeded"
    stored = Product.objects.get(upc="1234tyser").attr.additional_info
    # The typography of Oscar's own fixture survives; the script does not.
    assert stored.startswith('<p style="margin:0px;font-stretch:normal;font-size:12px;')
    assert "<strong>consectetuer</strong>" in stored
    assert stored.endswith(CLEAN)
    assert "pwned" not in stored and "<script" not in stored


@pytest.mark.django_db
def test_sanitising_can_be_turned_off_and_products_are_cleaned_on_their_next_write(
    write_feed, settings
):
    source = write_feed([product("X", description=HOSTILE), product("F", description=FORMATTING)])
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "SANITISE_HTML": False}
    run = sync_run_execute(source)
    assert description("X") == HOSTILE  # a trusted feed's HTML, as given

    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "SANITISE_HTML": True}
    run = sync_run_execute(source)  # the same file: not skipped, sanitising changes the writes

    assert (run.status, run.updated) == ("succeeded", 2)
    assert description("X") == CLEAN
    assert description("F") == FORMATTING
    run = sync_run_execute(source, full=True)
    assert (run.unchanged, run.updated) == (2, 0)


@pytest.mark.django_db
def test_products_written_before_sanitising_existed_are_cleaned(write_feed):
    """A product whose stored description has script and whose fingerprint is the one an
    earlier version wrote (over the unsanitised record) is rewritten, even with an unchanged
    feed item."""
    from productsync.models import SyncedProduct
    from productsync.records import ProductRecord

    item = product("X", description=HOSTILE)
    source = write_feed([item])
    sync_run_execute(source)
    # As the version before sanitising left it: the description as given, and the fingerprint
    # it computed, a digest of the record as validated.
    old = blake2b(ProductRecord.model_validate(item).model_dump_json().encode(), digest_size=16)
    row = SyncedProduct.objects.get(product__upc="X")
    Product.objects.filter(upc="X").update(description=HOSTILE, date_updated=row.synced_at)
    SyncedProduct.objects.filter(pk=row.pk).update(fingerprint=old.hexdigest())

    run = sync_run_execute(source, full=True)

    assert run.updated == 1
    assert description("X") == CLEAN


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sanitise", [True, False])
def test_the_storefront_product_page_runs_no_script_from_the_feed(
    write_feed, settings, live_server, browser, sanitise
):
    """The same hostile description through Oscar's product page in Chromium: sanitised, the
    page runs none of it; stored as given (SANITISE_HTML off), it does (so this test can
    fail)."""
    from selenium.webdriver.common.by import By

    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "SANITISE_HTML": sanitise}
    run = sync_run_execute(write_feed([product("X", title="Hostile", description=HOSTILE)]))
    assert run.status == "succeeded"
    url = Product.objects.get(upc="X").get_absolute_url()
    connection.close()

    browser.get(live_server.url + url)
    heading = browser.find_element(By.CSS_SELECTOR, "#content_inner h1").get_attribute(
        "textContent"
    )
    # Oscar prints the description inside a <p>, which the browser ends where the first <p>
    # of the description begins: look through the whole content of the page.
    content = browser.find_element(By.CSS_SELECTOR, "#content_inner")
    hostile = content.find_elements(By.CSS_SELECTOR, "script, iframe, [onerror], [onclick]")

    assert heading == "Hostile"
    assert "Click" in content.get_attribute("textContent")  # shown or not (style)
    if sanitise:
        assert (browser.title.startswith("Hostile"), hostile) == (True, [])
    else:
        assert browser.title == "pwned" and hostile
