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
    for fmt, write in (("json", write_json), ("jsonl", write_jsonl), ("csv", write_csv)):
        path = directory / f"catalogue-{n}.{fmt}"
        if not path.exists():
            tmp = path.with_suffix(path.suffix + ".tmp")
            write(tmp, n)
            tmp.rename(path)
        paths[fmt] = path
    return paths
