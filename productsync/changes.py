"""Field-level changes between two feed items (as writer.snapshot reads them), and what a
preview shows of a new one, in the same form."""

from typing import Any

# The fields of a product compared one by one; categories compare as one list.
SCALARS = ("barcode", "title", "description", "product_class", "categories", "is_public")
STOCK_VALUES = ("price", "currency", "num_in_stock")
# What a preview shows of a new product's children: their number, and the first few.
CHILDREN_SHOWN = 5


def _stock_key(stockrecord: dict) -> tuple[str, str]:
    return stockrecord["partner"], stockrecord["partner_sku"]


def stock_field(partner: str, partner_sku: str, name: str, prefix: str = "") -> str:
    """The name of a stock record's value in a list of changes."""
    return f"{prefix}stockrecords[{partner}/{partner_sku}].{name}"


def _member_changes(old: dict, new: dict, prefix: str, out: list) -> None:
    for name in SCALARS:
        if name in new and old.get(name) != new.get(name):
            out.append([f"{prefix}{name}", old.get(name), new.get(name)])
    before = {_stock_key(s): s for s in old.get("stockrecords", [])}
    after = {_stock_key(s): s for s in new.get("stockrecords", [])}
    for key in [*after, *(k for k in before if k not in after)]:
        was, now = before.get(key, {}), after.get(key, {})
        for name in STOCK_VALUES:
            if was.get(name) != now.get(name) or (not was) != (not now):
                out.append([stock_field(*key, name, prefix), was.get(name), now.get(name)])
    attributes_old, attributes_new = old.get("attributes", {}), new.get("attributes", {})
    for code in sorted(attributes_old.keys() | attributes_new.keys()):
        if attributes_old.get(code) != attributes_new.get(code):
            out.append(
                [f"{prefix}attributes.{code}", attributes_old.get(code), attributes_new.get(code)]
            )


def item_changes(old: dict | None, new: dict) -> list[list[Any]]:
    """[field, old value, new value] for each field of new that differs from old (None: a new
    product, every field listed). Stock records are named by partner/partner_sku, children by
    upc: a record or child that appears or leaves shows None on the side it is missing."""
    out: list[list[Any]] = []
    old = old or {}
    _member_changes(old, new, "", out)
    children_old = {c["upc"]: c for c in old.get("children", [])}
    children_new = {c["upc"]: c for c in new.get("children", [])}
    for upc in [*children_new, *(u for u in children_old if u not in children_new)]:
        was, now = children_old.get(upc), children_new.get(upc)
        prefix = f"children[{upc}]."
        if now is None:
            out.append([f"children[{upc}]", "present", None])
        else:
            _member_changes(was or {}, now, prefix, out)
    return out


def _member_facts(member: dict, prefix: str, out: list) -> None:
    if member.get("title") or not prefix:  # a child without a title shows its parent's
        out.append([f"{prefix}title", None, member.get("title")])
    for stockrecord in member.get("stockrecords", []):
        for name in ("price", "num_in_stock"):
            field = stock_field(*_stock_key(stockrecord), name, prefix)
            out.append([field, None, stockrecord.get(name)])


def created_facts(new: dict) -> list[list[Any]]:
    """[field, None, value] of what a preview shows of a new product (as writer.snapshot reads
    it): its title, class, the price and stock of its stock records, the number of its
    children and the first CHILDREN_SHOWN children's title, price and stock."""
    out: list[list[Any]] = []
    _member_facts(new, "", out)
    out.insert(1, ["product_class", None, new.get("product_class")])
    children = new.get("children", [])
    if children:
        out.append(["children", None, len(children)])
    for child in children[:CHILDREN_SHOWN]:
        _member_facts(child, f"children[{child['upc']}].", out)
    return out
