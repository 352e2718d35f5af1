"""A deterministic synthetic catalogue, written as our JSON/JSONL feed and as Oscar's CSV."""

import csv
import json
import random
from collections.abc import Iterator
from pathlib import Path

CLASSES = {"Book": "Books", "Music": "Music", "Film": "Films", "Game": "Games"}
PARTNERS = ["Acme Books", "Globex Media", "Initech Supplies"]
TOPICS = ["Computing", "Fiction", "History", "Science", "Travel", "Cooking", "Art", "Sport"]
SUBTOPICS = ["New", "Classics", "Bestsellers", "Bargains", "Imports"]
WORDS = [
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "labore",
    "dolore",
    "magna",
    "aliqua",
]


def product(i: int) -> dict:
    """Item i of every catalogue: it depends on i alone, so a smaller catalogue is a prefix."""
    rnd = random.Random(i)
    cls = list(CLASSES)[i % len(CLASSES)]
    title = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 6))).title()
    words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(15, 40)))
    return {
        "upc": f"97800{i:08d}",
        "title": f"{title} {i}",
        "product_class": cls,
        "description": f"<p>{words}.</p>",
        "categories": [
            f"{CLASSES[cls]} > {TOPICS[rnd.randrange(len(TOPICS))]} > "
            f"{SUBTOPICS[rnd.randrange(len(SUBTOPICS))]}"
        ],
        "is_public": True,
        "stockrecords": [
            {
                "partner": PARTNERS[i % len(PARTNERS)],
                "partner_sku": f"SKU-{i:08d}",
                "price": f"{rnd.randint(100, 9999) / 100:.2f}",
                "currency": "GBP",
                "num_in_stock": rnd.randint(0, 50),
            }
        ],
    }


def products(n: int) -> Iterator[dict]:
    return (product(i) for i in range(n))


def write_json(path: Path, n: int) -> None:
    """A JSON array, one item per line, written as a stream (1M items never sit in memory)."""
    with open(path, "w", encoding="utf-8") as out:
        out.write("[\n")
        for i, item in enumerate(products(n)):
            out.write(("," if i else "") + json.dumps(item) + "\n")
        out.write("]\n")


def write_jsonl(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for item in products(n):
            out.write(json.dumps(item) + "\n")


def write_csv(path: Path, n: int) -> None:
    """Oscar's headerless 9-column CSV: class, breadcrumb, upc, title, description, partner,
    sku, price, stock (read by oscar_import_catalogue with escapechar='\\')."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, escapechar="\\")
        for item in products(n):
            sr = item["stockrecords"][0]
            writer.writerow(
                [
                    item["product_class"],
                    item["categories"][0],
                    item["upc"],
                    item["title"],
                    item["description"],
                    sr["partner"],
                    sr["partner_sku"],
                    sr["price"],
                    sr["num_in_stock"],
                ]
            )


def write_all(directory: Path, n: int) -> dict[str, Path]:
    """Write the catalogue of n products in every format (once; reused when present)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    writers = (
        ("json", "json", write_json),
        ("jsonl", "jsonl", write_jsonl),
        ("csv", "csv", write_csv),
        ("changed", "changed.json", write_changed_json),
        ("fresh", "fresh.json", write_fresh_json),
        ("stock", "stock.csv", write_stock_csv),
    )
    for fmt, suffix, write in writers:
        path = directory / f"catalogue-{n}.{suffix}"
        if not path.exists():
            tmp = path.with_suffix(path.suffix + ".tmp")
            write(tmp, n)
            tmp.rename(path)
        paths[fmt] = path
    # Where a re-sync's feed is synced first and then replaced by another version's bytes
    # (bench/run.py): the same source both times, as a supplier's feed path is.
    paths["live"] = directory / f"catalogue-{n}.live.json"
    return paths


def changed(item: dict, i: int) -> dict:
    """Item i with a new price, as a supplier's daily price change gives it."""
    sr = item["stockrecords"][0]
    item["stockrecords"] = [{**sr, "price": f"{float(sr['price']) + 1 + i % 7:.2f}"}]
    return item


def write_changed_json(path: Path, n: int, every: int = 100) -> None:
    """The JSON catalogue of n products with the price of one product in every `every` changed
    (1% by default)."""
    with open(path, "w", encoding="utf-8") as out:
        out.write("[\n")
        for i, item in enumerate(products(n)):
            item = changed(item, i) if i % every == 0 else item
            out.write(("," if i else "") + json.dumps(item) + "\n")
        out.write("]\n")


def write_fresh_json(path: Path, n: int) -> None:
    """The JSON catalogue of n products in a file of other bytes: every item's bytes as in
    write_json, one more newline at the end. A re-sync of it reads every item (the file is
    not the one the last run read) and finds each unchanged."""
    write_json(path, n)
    with open(path, "a", encoding="utf-8") as out:
        out.write("\n")


def write_stock_csv(path: Path, n: int) -> None:
    """A stock file of the catalogue's n stock records (partner, sku, price, num_in_stock)
    with price and quantity changed on every one."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["partner", "sku", "price", "num_in_stock"])
        for i, item in enumerate(products(n)):
            sr = changed(item, i)["stockrecords"][0]
            writer.writerow([sr["partner"], sr["partner_sku"], sr["price"], sr["num_in_stock"] + 1])
