"""The ledger always balances: random hostile feeds, random batch sizes, the JSON, JSON Lines
and CSV readers, from files and over HTTP."""

import copy
import csv
import io
import json
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oscar.core.loading import get_model

from productsync.models import SyncFailure, SyncRun
from productsync.services import sync_run_execute
from productsync.writer.sanitise import html_sanitise
from tests.catalogue import HEADER

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")

UPCS = [f"U{i}" for i in range(8)]
PARTNERS = ["Acme Books", "Globex"]
CATEGORIES = ["Books > Computing", "Books > Fiction", "Toys", "Home > Kitchen > Knives"]
# Owned by a product that is not in the feeds: claiming it must fail.
SEED = {
    "upc": "SEED",
    "title": "Seed product",
    "product_class": "Book",
    "stockrecords": [{"partner": "Acme Books", "partner_sku": "TAKEN", "price": "1.00"}],
}
# Letters, digits, accents, CJK, an emoji and a ligature that slugifies to three letters.
TEXT = st.text(
    st.sampled_from(list("abcXYZ019 -_éß日本語😀ﬃ<>&'\"")), min_size=1, max_size=30
).filter(lambda t: t.strip() and ">" not in t)
# A title, often with surrounding spaces or tabs, which it keeps (a blank one is refused).
PADDING = st.sampled_from(["", "", " ", "  ", "\t", " \t "])
TITLE = st.tuples(PADDING, TEXT, PADDING).map("".join)
# Control characters other than NUL are stored as they are and escaped when shown.
DESCRIPTION = st.text(st.sampled_from(list("ab \n\t\x07\x1b[31m\u202e<p>é")), max_size=40)


def price():
    cents = st.integers(min_value=0, max_value=10**6)
    return st.one_of(
        st.none(),
        cents.map(lambda c: f"{Decimal(c) / 100:.2f}"),
        cents.map(lambda c: c / 4),
    )


@st.composite
def valid_item(draw, max_records: int = 2, extras: bool = True):
    upc = draw(st.sampled_from(UPCS))
    skus = draw(
        st.lists(
            st.tuples(
                st.sampled_from(PARTNERS),
                st.one_of(
                    st.just(f"SKU-{upc}"),
                    st.sampled_from(UPCS).map(lambda u: f"SKU-{u}"),
                    st.just("TAKEN"),
                ),
            ),
            max_size=max_records,
            unique=True,
        )
    )
    item = {
        "upc": draw(st.sampled_from([upc, f"  {upc} "])),
        "title": draw(TITLE),
        "product_class": draw(st.sampled_from(["Book", "Toy"])),
        "description": draw(DESCRIPTION),
        "categories": draw(st.lists(st.sampled_from(CATEGORIES), max_size=2)),
        "is_public": draw(st.booleans()),
        "stockrecords": [
            {
                "partner": partner,
                "partner_sku": sku,
                "price": draw(price()),
                "currency": draw(st.sampled_from([None, "GBP", "EUR"])),
                "num_in_stock": draw(st.one_of(st.none(), st.integers(0, 1000))),
            }
            for partner, sku in skus
        ],
    }
    extra_keys = st.lists(st.sampled_from(["colour", "x\x00y", "ünknown"]), max_size=2)
    for key in draw(extra_keys) if extras else []:
        item[key] = draw(st.sampled_from([1, None, "junk", {"a": [1, {"b": []}]}]))
    return item


def nested(depth: int):
    junk: list = []
    for _ in range(depth):
        junk = [junk]
    return junk


# Each breaks a valid item in one way; every result must be refused with its own failure.
BREAKERS = [
    lambda i: i.pop("title"),
    lambda i: i.pop("upc"),
    lambda i: i.update(product_class=""),
    lambda i: i.update(title=123),
    lambda i: i.update(title=" \t\n "),
    lambda i: i.update(upc=["U1"]),
    lambda i: i.update(categories="Books"),
    lambda i: i.update(categories=["Books >  > Fiction"]),
    lambda i: i.update(stockrecords={"partner": "Acme"}),
    lambda i: i.update(is_public=None),
    lambda i: i.update(title="x" * 256),
    lambda i: i.update(upc="u" * 65),
    lambda i: i.update(title="nul\x00byte"),
    lambda i: i.update(description="nul \x00 in description"),
    lambda i: i.update(categories=["Books > nul\x00"]),
    lambda i: i.update(junk=nested(200)),
    lambda i: i.update(stockrecords=[{"partner": "Acme", "partner_sku": "P", "price": "-1.00"}]),
    lambda i: i.update(stockrecords=[{"partner": "Acme", "partner_sku": "P", "price": "1.234"}]),
    lambda i: i.update(stockrecords=[{"partner": "Acme", "partner_sku": "P", "price": 1e13}]),
    lambda i: i.update(stockrecords=[{"partner": "Acme", "partner_sku": "P", "price": True}]),
    lambda i: i.update(
        stockrecords=[{"partner": "Acme", "partner_sku": "P", "num_in_stock": True}]
    ),
    lambda i: i.update(stockrecords=[{"partner": "Acme", "partner_sku": "P", "currency": "£"}]),
    lambda i: i.update(stockrecords=[{"partner": "Acme", "partner_sku": "x" * 129}]),
    lambda i: i.update(stockrecords=[{"partner": "Acme", "partner_sku": "P"}] * 2),
]
# A lone surrogate escape, high or low (the array's elements and the lines are parsed by the
# json module, which keeps it for the validation to refuse).
BREAKERS += [
    lambda i: i.update(title="lone \ud800 surrogate"),
    lambda i: i.update(title="lone \udc00 surrogate"),
]
# Items that are not product objects at all.
NON_OBJECTS = [42, "a string", None, [], [{"upc": "U1"}], True]
# JSON Lines only: lines that are not JSON (raw bytes are written as they are).
BAD_LINES = [
    b"not json at all",
    b'{"upc": "caf\xe9", "title": "Latin-1"}',
    b"junk \xff\x00 bytes that are not text, in an otherwise text line",
    b'{"upc": "U1", "price": NaN}',
    b'{"upc": "U1", "n": 1e400}',
    b'{"upc": "U1", "title": "raw \x00 byte"}',
    b'{"upc": "U1", "title": "unterminated',
    b"[" * 3000 + b"]" * 3000,
]


@st.composite
def feed_items(draw, fmt: str):
    """A list of (kind, value): kind is 'valid', 'invalid' or 'line' (raw JSON Lines bytes)."""
    kinds = ["valid", "invalid", "object"] + (["line"] if fmt == "jsonl" else [])
    out = []
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=12)):
        if kind == "valid":
            out.append(("valid", draw(valid_item())))
        elif kind == "invalid":
            item = draw(valid_item())
            draw(st.sampled_from(BREAKERS))(item)
            out.append(("invalid", item))
        elif kind == "object":
            out.append(("invalid", draw(st.sampled_from(NON_OBJECTS))))
        else:
            out.append(("line", draw(st.sampled_from(BAD_LINES))))
    return out


def csv_payload(item: dict) -> dict:
    """A flat item with at most one stock record as the CSV reader gives it back: every value
    text, empty stock cells None, no stockrecords without a partner."""
    payload = {key: item[key] for key in ("upc", "title", "product_class", "description")}
    payload["categories"] = item["categories"]
    payload["is_public"] = str(item["is_public"]).upper()
    for sr in item["stockrecords"]:
        text = {key: None if sr[key] is None else str(sr[key]) for key in sr}
        payload["stockrecords"] = [text]
    return payload


def csv_line(cells: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue().removesuffix("\r\n").encode()


def csv_cells(payload: dict) -> list[str]:
    """One row in our header's column order."""
    stock = (payload.get("stockrecords") or [{}])[0]
    flat = {**payload, **stock, "categories": "|".join(payload["categories"])}
    return ["" if flat.get(name) is None else flat[name] for name in HEADER]


def _stock(**fields):
    record = {"partner": "Acme", "partner_sku": "P", "price": None, "currency": None}
    return lambda p: p.update(stockrecords=[{**record, "num_in_stock": None, **fields}])


# Each breaks one cell of a CSV row (given as csv_payload) that has the right width.
CSV_BREAKERS = [
    lambda p: p.update(upc=""),
    lambda p: p.update(title=""),
    lambda p: p.update(product_class=""),
    lambda p: p.update(title="   "),
    lambda p: p.update(title="x" * 256),
    lambda p: p.update(upc="u" * 65),
    lambda p: p.update(title="nul\x00byte"),
    lambda p: p.update(description="nul \x00 in description"),
    lambda p: p.update(categories=["Books > nul\x00"]),
    lambda p: p.update(categories=["Books >  > Fiction"]),
    lambda p: p.update(is_public="maybe"),
    _stock(price="abc"),
    _stock(price="-1.00"),
    _stock(price="1.234"),
    _stock(price="1e13"),
    _stock(price="NaN"),
    _stock(price="£5"),
    _stock(num_in_stock="x"),
    _stock(num_in_stock="1.5"),
    _stock(currency="£"),
    _stock(partner_sku="x" * 129),
    _stock(partner_sku="P\x00"),
]


@st.composite
def csv_feed_items(draw):
    """Like feed_items for CSV: valid and broken rows, and ragged rows ('line', their bytes).
    Consecutive rows of one upc are one product in our CSV, so they are not generated."""
    out, previous = [], None
    for kind in draw(
        st.lists(st.sampled_from(["valid", "invalid", "line"]), min_size=1, max_size=12)
    ):
        item = draw(valid_item(max_records=1, extras=False))
        if kind == "line":
            cells = csv_cells(csv_payload(item))
            width = draw(st.sampled_from([1, len(cells) - 1, len(cells) + 1]))
            out.append(("line", csv_line((cells + ["extra"])[:width])))
            previous = None
            continue
        if kind == "invalid":
            item = csv_payload(item)
            draw(st.sampled_from(CSV_BREAKERS))(item)
        if item["upc"] and item["upc"] == previous:
            continue
        previous = item["upc"]
        out.append((kind, item))
    return out


def feed_bytes(items, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps([value for _, value in items]).encode()
    if fmt == "csv":
        rows = [v if k == "line" else csv_line(csv_cells(csv_as_read(k, v))) for k, v in items]
        lines = [csv_line(HEADER), *rows]
        return b"\r\n".join(lines) + b"\r\n"
    lines = [v if k == "line" else json.dumps(v).encode() for k, v in items]
    return b"\n".join(lines) + b"\n"


def expected_catalogue(items) -> tuple[dict, set[int]]:
    """Replay the feed one item at a time: the products it must leave, and the positions
    that must fail (invalid, a duplicate UPC, or a SKU that another product owns)."""
    owners = {("Acme Books", "TAKEN"): "SEED"}
    products, failed = {}, set()
    for position, (kind, item) in enumerate(items):
        if kind != "valid":
            failed.add(position)
            continue
        upc = item["upc"].strip()
        skus = [(sr["partner"], sr["partner_sku"]) for sr in item["stockrecords"]]
        if upc in products or any(owners.get(sku, upc) != upc for sku in skus):
            failed.add(position)
            continue
        products[upc] = item
        owners.update(dict.fromkeys(skus, upc))
    return products, failed


def catalogue_state() -> dict:
    """Everything the sync writes, keyed by UPC, with the database ids and timestamps."""
    state = {}
    for p in Product.objects.prefetch_related("categories", "stockrecords__partner"):
        state[p.upc] = {
            "row": (p.pk, p.title, p.description, p.product_class.name, p.is_public),
            "date_updated": p.date_updated,
            "categories": sorted(c.full_name for c in p.categories.all()),
            "stockrecords": sorted(
                (
                    sr.pk,
                    sr.partner.name,
                    sr.partner_sku,
                    sr.price,
                    sr.price_currency,
                    sr.num_in_stock,
                    sr.date_updated,
                )
                for sr in p.stockrecords.all()
            ),
        }
    return state


def assert_matches_feed(state: dict, products: dict) -> None:
    assert set(state) == set(products) | {"SEED"}
    for upc, item in products.items():
        got = state[upc]
        assert got["row"][1:] == (
            item["title"],  # kept as given, surrounding spaces too
            html_sanitise(item["description"]),  # HTML as the storefront may show it
            item["product_class"],
            item["is_public"],
        )
        assert got["categories"] == sorted(set(item["categories"]))
        assert sorted(sr[1:6] for sr in got["stockrecords"]) == sorted(
            (
                sr["partner"],
                sr["partner_sku"],
                None if sr["price"] is None else Decimal(str(sr["price"])),
                sr["currency"] or "GBP",
                sr["num_in_stock"],
            )
            for sr in item["stockrecords"]
        )


def as_read(kind: str, value):
    """The payload a JSON reader gives back for an item: the item itself."""
    return value


def csv_as_read(kind: str, value):
    return csv_payload(value) if kind == "valid" else value


def assert_ledger(run: SyncRun, items, failed: set[int], read=as_read) -> None:
    assert run.items == len(items)
    assert run.created + run.updated + run.unchanged + run.repaired + run.failed == run.items
    assert run.batches == -(-len(items) // run.batch_size)
    failures = {f.position: f for f in SyncFailure.objects.filter(run=run)}
    assert set(failures) == failed
    for position in failed:
        kind, value = items[position]
        raw = failures[position].raw_payload
        assert failures[position].message
        if kind == "line":
            expected = value.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
            assert raw == expected
        elif kind == "invalid" and isinstance(value, dict) and "junk" in value:
            assert "deeper than" in failures[position].message
            assert json.loads(raw)["upc"] == value["upc"]  # kept as JSON, cut at the limit
        else:
            assert json.loads(raw) == read(kind, value)


def untimed(state: dict) -> dict:
    """A catalogue_state without its timestamps (a run that writes the same values moves them)."""
    return {
        upc: {**got, "date_updated": None, "stockrecords": [sr[:-1] for sr in got["stockrecords"]]}
        for upc, got in state.items()
    }


def sync_and_check(
    path: str,
    seed: str,
    items,
    batch_size: int,
    read=as_read,
    again: dict | None = None,
    owns: str | None = None,
) -> None:
    """again: more options of the second run (--only, --allow-mass-change), which finds every
    product the first created and changes none of them whatever they say; owns: a third run
    owning some of what the same feed wrote, which changes nothing."""
    sync_run_execute(seed, batch_size=1)
    products, failed = expected_catalogue(items)

    first = sync_run_execute(path, batch_size=batch_size)
    assert first.status == (
        SyncRun.Status.COMPLETED_WITH_FAILURES if failed else SyncRun.Status.SUCCEEDED
    )
    assert first.created == len(products) and first.updated == 0
    assert_ledger(first, items, failed, read)
    state = catalogue_state()
    assert_matches_feed(state, products)

    second = sync_run_execute(path, batch_size=batch_size, full=True, **(again or {}))
    assert (second.created, second.updated) == (0, 0)
    assert second.unchanged == len(products)
    assert_ledger(second, items, failed, read)
    assert catalogue_state() == state
    if owns is not None:  # owning some of what the same feed wrote changes nothing
        third = sync_run_execute(path, batch_size=batch_size, full=True, owns=owns)
        assert (third.created, third.owns) == (0, owns)
        assert_ledger(third, items, failed, read)
        assert untimed(catalogue_state()) == untimed(state)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.django_db
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_item_is_in_the_catalogue_or_a_failure(fmt, data):
    items = data.draw(feed_items(fmt), label="items")
    batch_size = data.draw(st.integers(1, 8), label="batch_size")
    again = {
        "only": data.draw(st.sampled_from([None, "create", "update"]), label="only"),
        "allow_mass_change": data.draw(st.sampled_from([None, True]), label="allow_mass_change"),
    }
    owns = data.draw(st.sampled_from([None, "price", "price,num_in_stock,title"]), label="owns")
    with tempfile.TemporaryDirectory() as tmp, transaction.atomic():
        seed = Path(tmp, "seed.json")
        seed.write_text(json.dumps([SEED]))
        path = Path(tmp, f"feed.{fmt}")
        path.write_bytes(feed_bytes(items, fmt))
        sync_and_check(str(path), str(seed), items, batch_size, again=again, owns=owns)
        transaction.set_rollback(True)


@pytest.fixture
def server(http_server):
    """One server for all the examples of a test."""
    return http_server()


CONTENT_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv"}


@pytest.mark.parametrize(
    ("source", "fmt"), [("file", "csv"), ("http", "json"), ("http", "jsonl"), ("http", "csv")]
)
@pytest.mark.django_db
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_csv_row_and_http_item_is_in_the_catalogue_or_a_failure(server, source, fmt, data):
    """The same ledger over our header CSV (flat rows, one stock record each, ragged and
    badly-typed rows), and over a real HTTP server serving the generated feed."""
    items = data.draw(csv_feed_items() if fmt == "csv" else feed_items(fmt), label="items")
    batch_size = data.draw(st.integers(1, 8), label="batch_size")
    body = feed_bytes(items, fmt)
    with tempfile.TemporaryDirectory() as tmp, transaction.atomic():
        seed = Path(tmp, "seed.json")
        seed.write_text(json.dumps([SEED]))
        if source == "http":
            server.files[f"/feed.{fmt}"] = (body, CONTENT_TYPES[fmt])
            path = f"{server.url}/feed.{fmt}"
        else:
            path = str(Path(tmp, f"feed.{fmt}"))
            Path(path).write_bytes(body)
        read = csv_as_read if fmt == "csv" else as_read
        sync_and_check(path, str(seed), items, batch_size, read)
        transaction.set_rollback(True)


# Partial feeds: stock items and items by upc carrying a few fields, over a seeded catalogue.
PARTIAL_SEED = [
    {
        "upc": upc,
        "title": f"Seed {upc}",
        "product_class": "Book",
        "stockrecords": [
            {"partner": "Acme Books", "partner_sku": f"SKU-{upc}", "price": "5.00"},
            {"partner": "Globex", "partner_sku": f"G-{upc}", "num_in_stock": 2},
        ],
    }
    for upc in UPCS
]
SKUS = [
    (p, f"{prefix}-{u}") for u in UPCS for p, prefix in (("Acme Books", "SKU"), ("Globex", "G"))
]


@st.composite
def stock_change(draw, keyed: bool = True) -> dict:
    partner, sku = draw(st.sampled_from([*SKUS, ("Acme Books", "NOPE"), ("Nobody", "SKU-U1")]))
    change = {"partner": partner, "partner_sku": sku}
    for key, values in (
        ("price", price()),
        ("num_in_stock", st.one_of(st.none(), st.integers(0, 9))),
        ("currency", st.sampled_from([None, "GBP", "EUR"])),
    ):
        value = draw(values)
        if value is not None:
            change[key] = value
    return change


@st.composite
def partial_item(draw):
    kind = draw(st.sampled_from(["stock", "product", "invalid"]))
    if kind == "stock":
        return "valid", draw(stock_change())
    if kind == "invalid":
        return "invalid", draw(
            st.sampled_from(
                [
                    {"upc": "U1", "product_class": "Toy"},
                    {"partner_sku": "SKU-U1", "partner": "Acme Books", "title": "No"},
                    {"partner": "Acme Books", "partner_sku": "SKU-U1", "price": "-1.00"},
                    {"partner": "Acme Books", "partner_sku": "SKU-U1", "num_in_stock": True},
                    {"upc": "U2", "title": "x" * 256},
                    {"upc": "U2", "title": " \t "},
                    {"price": "1.00"},
                    42,
                    None,
                ]
            )
        )
    item = {"upc": draw(st.sampled_from([*UPCS, "MISSING"]))}
    if draw(st.booleans()):
        item["title"] = draw(TITLE)
    if draw(st.booleans()):
        item["is_public"] = draw(st.booleans())
    if draw(st.booleans()):
        item["description"] = draw(DESCRIPTION)
    changes = draw(st.lists(stock_change(), max_size=2, unique_by=lambda c: c["partner_sku"]))
    if changes:
        item["stockrecords"] = changes
    return "valid", item


def partial_replay(items, state: dict | None = None) -> tuple[dict, set[int], int]:
    """The catalogue a partial feed must leave on the seeded one (or on state), replayed
    one item at a time; the positions that must fail; how many items change something."""
    if state is not None:
        products, stock = copy.deepcopy(state["products"]), copy.deepcopy(state["stock"])
        return _replay(items, products, stock)
    products = {u: {"title": f"Seed {u}", "description": "", "is_public": True} for u in UPCS}
    stock = {
        (partner, sku): {
            "price": Decimal("5.00") if partner == "Acme Books" else None,
            "currency": "GBP",
            "num_in_stock": None if partner == "Acme Books" else 2,
            "upc": sku.split("-", 1)[1],
        }
        for partner, sku in SKUS
    }
    return _replay(items, products, stock)


def _replay(items, products: dict, stock: dict) -> tuple[dict, set[int], int]:
    failed, changed = set(), 0
    for position, (kind, item) in enumerate(items):
        upc = item.get("upc") if kind == "valid" else None
        changes = item.get("stockrecords", []) if upc else [item]
        keys = [(c["partner"], c["partner_sku"]) for c in changes] if kind == "valid" else []
        if (
            kind != "valid"
            or (upc is not None and upc not in products)
            or any(key not in stock or (upc and stock[key]["upc"] != upc) for key in keys)
        ):
            failed.add(position)
            continue
        moved = False
        for key in ("title", "description", "is_public") if upc else ():
            if key in item:
                moved |= products[upc][key] != item[key]
                products[upc][key] = item[key]
        for change, key in zip(changes, keys, strict=True):
            for field in ("price", "currency", "num_in_stock"):
                if field in change:
                    value = Decimal(str(change[field])) if field == "price" else change[field]
                    moved |= stock[key][field] != value
                    stock[key][field] = value
        changed += moved
    return {"products": products, "stock": stock}, failed, changed


def partial_state() -> dict:
    products = {
        p.upc: {"title": p.title, "description": p.description, "is_public": p.is_public}
        for p in Product.objects.filter(upc__in=UPCS)
    }
    stock = {
        (sr.partner.name, sr.partner_sku): {
            "price": sr.price,
            "currency": sr.price_currency,
            "num_in_stock": sr.num_in_stock,
            "upc": sr.product.upc,
        }
        for sr in StockRecord.objects.select_related("partner", "product")
    }
    return {"products": products, "stock": stock}


@pytest.mark.django_db
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_partial_item_changes_what_it_gives_or_is_a_failure(data):
    items = data.draw(st.lists(partial_item(), min_size=1, max_size=12), label="items")
    batch_size = data.draw(st.integers(1, 8), label="batch_size")
    with tempfile.TemporaryDirectory() as tmp, transaction.atomic():
        seed = Path(tmp, "seed.json")
        seed.write_text(json.dumps(PARTIAL_SEED))
        sync_run_execute(str(seed), batch_size=8)
        expected, failed, changed = partial_replay(items)
        path = Path(tmp, "partial.jsonl")
        path.write_bytes(feed_bytes(items, "jsonl"))

        run = sync_run_execute(str(path), batch_size=batch_size, partial=True)

        assert run.partial and (run.created, run.repaired, run.hidden) == (0, 0, 0)
        assert_partial_ledger(run, items, failed)
        assert (run.updated, run.unchanged) == (changed, len(items) - len(failed) - changed)
        assert partial_state() == expected
        # Again: a feed that sets a record twice is not idempotent item by item, so replayed.
        expected, _, changed = partial_replay(items, expected)
        again = sync_run_execute(str(path), batch_size=batch_size, partial=True)
        assert_partial_ledger(again, items, failed)
        assert (again.updated, again.unchanged) == (changed, len(items) - len(failed) - changed)
        assert partial_state() == expected
        transaction.set_rollback(True)


def assert_partial_ledger(run: SyncRun, items, failed: set[int]) -> None:
    assert run.items == len(items)
    assert run.created + run.updated + run.unchanged + run.repaired + run.failed == run.items
    failures = {f.position: f for f in SyncFailure.objects.filter(run=run)}
    assert set(failures) == failed
    for position in failed:
        assert failures[position].message
        assert json.loads(failures[position].raw_payload) == items[position][1]
