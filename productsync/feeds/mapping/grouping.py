"""CSV rows grouped into products: consecutive rows sharing a key (Shopify's Handle), or rows
that name each other in any order (WooCommerce's Parent, Magento's configurable_variations),
through an index on disk so memory stays bounded by one group, not the file."""

import contextlib
import itertools
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from productsync.records import Unparsed


class Row(NamedTuple):
    line: int
    data: dict | Unparsed


# A group: the product's row first, then the rows of its variants.
Group = list[Row]


def groups_consecutive(rows: Iterable[Row], key: Callable[[dict], Any]) -> Iterator[Group]:
    """Rows with the same non-empty key one after the other are one group."""
    counter = itertools.count()

    def group_key(row: Row) -> Any:
        value = key(row.data) if isinstance(row.data, dict) else None
        return value if value not in ("", None) else ("row", next(counter))

    for _, group in itertools.groupby(rows, group_key):
        yield list(group)


def groups_by_reference(
    rows: Iterable[Row],
    key: Callable[[dict], str],
    parent: Callable[[dict], str] | None = None,
    children: Callable[[dict], list[str]] | None = None,
    folder: str | None = None,
    beat: Callable[[], None] | None = None,
) -> Iterator[Group]:
    """Rows grouped under the row whose key another row names: a row naming its parent's
    key (parent), or a row naming its children's keys (children), in any order. The rows
    are written to a temporary SQLite file on the way through (one pass over the source,
    which may be an HTTP stream), then read back one group at a time in the order of each
    group's first row. A child named by several parents goes to the first; a reference to
    a key no row has leaves the row on its own; a key's later rows have no children. The
    file is made in folder (created if need be), or in the system's temporary folder; beat()
    is called after each chunk of rows written to it."""
    with _indexed(rows, key, parent, children, folder, beat) as db:
        yield from _groups(db)


@contextlib.contextmanager
def _indexed(rows, key, parent, children, folder, beat) -> Iterator[sqlite3.Connection]:
    """The rows indexed in a SQLite file of a temporary folder (in folder, created if need
    be, else the system's), removed when the block ends."""
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="productsync-", dir=folder) as own:
        db = sqlite3.connect(os.path.join(own, "rows.sqlite3"))
        with contextlib.closing(db):
            _index(db, rows, key, parent, children, beat)
            yield db


def groups_sharing(
    rows: Iterable[Row],
    key: Callable[[dict], Any],
    folder: str | None = None,
    beat: Callable[[], None] | None = None,
) -> Iterator[Group]:
    """Rows with the same non-empty key anywhere in the file are one group (Google's
    item_group_id), in the order of each group's first row; a row without a key stands
    alone. Indexed on disk (in folder, beating) as groups_by_reference is."""
    with _indexed(rows, key, None, None, folder, beat) as db:
        top = db.execute(
            "SELECT n, line, key, data FROM row AS r WHERE key IS NULL OR NOT EXISTS"
            " (SELECT 1 FROM row AS p WHERE p.key = r.key AND p.n < r.n) ORDER BY n"
        )
        for n, line, own, data in top:
            group = [_row(line, data, own)]
            if own is not None:
                members = db.execute(
                    "SELECT line, data FROM row WHERE key = ? AND n > ? ORDER BY n", (own, n)
                )
                group += [Row(line, json.loads(data)) for line, data in members]
            yield group


def _row(line: int, data: str, own: str | None) -> Row:
    if own is None and data.startswith("["):
        return Row(line, Unparsed(*json.loads(data)))
    return Row(line, json.loads(data))


def _index(db: sqlite3.Connection, rows, key, parent, children, beat) -> None:
    db.executescript(
        """
        PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
        CREATE TABLE row (n INTEGER PRIMARY KEY, line INTEGER, key TEXT, data TEXT);
        CREATE TABLE ref (child TEXT, parent TEXT, n INTEGER);
        """
    )
    batch, refs = [], []
    for n, row in enumerate(rows):
        if isinstance(row.data, Unparsed):
            batch.append((n, row.line, None, json.dumps([row.data.text, row.data.message])))
        else:
            own = str(key(row.data) or "").strip() or None
            batch.append((n, row.line, own, json.dumps(row.data)))
            named = str(parent(row.data) or "").strip() if parent else ""
            if own and named and named != own:
                refs.append((own, named, n))
            for child in children(row.data) if children and own else ():
                if child and child != own:
                    refs.append((child, own, n))
        if len(batch) >= 500:
            _flush(db, batch, refs)
            if beat:
                beat()
    _flush(db, batch, refs)
    db.executescript(
        """
        CREATE INDEX row_key ON row (key, n);
        -- Each child's parent: the first reference to a key that a row has.
        CREATE TABLE link AS
            SELECT child, parent, min(n) AS n FROM ref
            WHERE parent IN (SELECT key FROM row WHERE key IS NOT NULL) GROUP BY child;
        -- A parent that is itself someone's child is not one: its rows stand on their own.
        DELETE FROM link WHERE parent IN (SELECT child FROM link);
        CREATE INDEX link_parent ON link (parent);
        CREATE UNIQUE INDEX link_child ON link (child);
        """
    )


def _flush(db: sqlite3.Connection, batch: list, refs: list) -> None:
    db.executemany("INSERT INTO row VALUES (?, ?, ?, ?)", batch)
    db.executemany("INSERT INTO ref VALUES (?, ?, ?)", refs)
    batch.clear()
    refs.clear()


def _groups(db: sqlite3.Connection) -> Iterator[Group]:
    # Only the first row of a key has the key's children: later rows of the same key (a
    # repeated SKU) stand alone, so n rows of one key cost n rows, not n groups of every child.
    top = db.execute(
        "SELECT line, key, data, n = (SELECT min(r.n) FROM row r WHERE r.key = row.key) FROM row"
        " WHERE key IS NULL OR key NOT IN (SELECT child FROM link) ORDER BY n"
    )
    for line, own, data, first in top:
        if own is None and data.startswith("["):
            yield [Row(line, Unparsed(*json.loads(data)))]
            continue
        group = [Row(line, json.loads(data))]
        if own is not None and first:
            members = db.execute(
                "SELECT row.line, row.data FROM link JOIN row ON row.key = link.child"
                " WHERE link.parent = ? ORDER BY row.n",
                (own,),
            )
            group += [Row(line, json.loads(data)) for line, data in members]
        yield group
