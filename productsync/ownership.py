"""Which fields a feed item carries (a field it does not carry is left as it is), and the
fields a run owns: it writes those and nothing else, whatever its items carry."""

import functools
import hashlib
from collections.abc import Iterable

from pydantic import BaseModel

from productsync.exceptions import ProductSyncError
from productsync.records import ProductRecord

# Fields added later are left out of a fingerprint while empty, so earlier ones stay valid.
LATER_FIELDS = ("slug", "barcode", "class_options", "attribute_types", "attribute_names")
CHILD_FIELDS = (
    "title",
    "description",
    "is_public",
    "attributes",
    "images",
    "stockrecords",
    "barcode",
)
# Lists a run that does not own them still reads (to find the records and children whose
# owned fields it writes): in a fingerprint even when the item does not carry them.
FOUND_LISTS = ("children", "stockrecords")
# A product's fields and lists, then a stock record's values: what --owns may name.
PRODUCT_FIELDS = (
    "title",
    "description",
    "product_class",
    "is_public",
    "categories",
    "attributes",
    "images",
    "children",
    "stockrecords",
    "barcode",
)
STOCK_FIELDS = ("price", "currency", "num_in_stock")
OWNABLE = PRODUCT_FIELDS + STOCK_FIELDS


def carried(model: BaseModel, name: str) -> bool:
    """Whether the item gave this field (a value, null or empty), not left it out."""
    return name in model.model_fields_set


def owns_parse(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """The fields a run owns, from "price,num_in_stock" or a list; None (every field) when
    none are named. ProductSyncError names an unknown field and the known ones."""
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(name, str) for name in names):
        raise ProductSyncError(f"owns: a list of field names, not {value!r}"[:200])
    owned = tuple(dict.fromkeys(name.strip() for name in names if name.strip()))
    unknown = [name for name in owned if name not in OWNABLE]
    if unknown:
        raise ProductSyncError(
            f"owns: unknown field {unknown[0][:60]!r} (known: {', '.join(OWNABLE)})"
        )
    return owned or None


def _unset(model: BaseModel, owns: tuple[str, ...], names: tuple[str, ...], **update):
    """A copy of model that does not carry the fields of names the run does not own."""
    copy = model.model_copy(update=update)  # which marks the updated fields given
    dropped = {name for name in names if name not in owns}
    object.__setattr__(copy, "__pydantic_fields_set__", model.model_fields_set - dropped)
    return copy


def _member_owned(member, owns: tuple[str, ...]):
    records = [_unset(sr, owns, STOCK_FIELDS) for sr in member.stockrecords]
    if "stockrecords" not in owns and not set(STOCK_FIELDS) & set(owns):
        records = []  # no value of a stock record is the run's: none is written
    # Lists not owned are emptied: the categories and attributes they name are not made.
    emptied = {
        name: type(getattr(member, name))()
        for name in ("categories", "attributes", "images")
        if name in type(member).model_fields and name not in owns
    }
    return _unset(member, owns, PRODUCT_FIELDS, stockrecords=records, **emptied)


def record_owned(record: ProductRecord, owns: tuple[str, ...] | None) -> ProductRecord:
    """The record as the run writes it: carrying only the fields the run owns (all of them
    when owns is None). Its children and stock records stay to be found, their own fields
    owned the same way."""
    if owns is None:
        return record
    children = [_member_owned(child, owns) for child in record.children]
    owned = _member_owned(record, owns)
    return _unset(owned, owns, (), children=children)


def record_fingerprint(
    record: ProductRecord, policy: str = "", owns: tuple[str, ...] | None = None
) -> str:
    """A digest of everything the sync writes for this record, and of the policy the writer
    applies to it (the HTML sanitising in force, the fields the run owns); equal digest, no
    writes. A field given at its default value is named apart from one left out (they
    differ: empty clears, absent leaves), so the far more common records, which leave out
    what they do not know and give what they do, keep the digests they had before the two
    differed. With owns, the fields the run does not own are left out."""
    # Fields added later are left out while empty, so earlier fingerprints stay valid.
    exclude: dict = {name: True for name in LATER_FIELDS if _unset_later(getattr(record, name))}
    # Children's fields added later, left out while no child has them.
    unused = {
        n
        for n in ("slug", "images", "barcode")
        if all(_unset_later(getattr(c, n)) for c in record.children)
    }
    if owns is None:
        if unused:
            exclude["children"] = {"__all__": unused}
    else:
        exclude.update(_member_exclude(record, PRODUCT_FIELDS))
        children = {
            i: _member_exclude(child, CHILD_FIELDS) | dict.fromkeys(unused, True)
            for i, child in enumerate(record.children)
        }
        exclude["children"] = {i: left_out for i, left_out in children.items() if left_out}
    text = record.model_dump_json(exclude=exclude)
    given = _given_defaults(record)
    text += f"\ngiven empty: {','.join(given)}" if given else ""
    text += f"\nowns: {','.join(owns)}" if owns is not None else ""
    text += f"\n{policy}" if policy else ""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _unset_later(value) -> bool:
    """Whether a field added later is left at its default (None, or an empty list or table;
    an empty barcode is given: it clears the UPC)."""
    return value is None or value == [] or value == {}


def _given_defaults(record: ProductRecord) -> list[str]:
    """The fields of the record's products and stock records given at their default value
    (empty, null, public), by path."""
    given = []
    for prefix, member in record.members():
        defaults = _defaults(type(member), PRODUCT_FIELDS if not prefix else CHILD_FIELDS)
        for name, default in defaults.items():
            if carried(member, name) and getattr(member, name) == default:
                given.append(prefix + name)
        for i, sr in enumerate(member.stockrecords):
            given += [
                f"{prefix}stockrecords[{i}].{name}"
                for name in STOCK_FIELDS
                if carried(sr, name) and getattr(sr, name) is None
            ]
    return given


@functools.lru_cache(maxsize=8)
def _defaults(model, names: tuple[str, ...]) -> dict:
    """The default values of these fields of a record model, by name: worked out once (a
    default factory's signature is parsed at each call of pydantic's get_default). Compared,
    never handed out, so a factory's list is shared safely."""
    fields = model.model_fields
    return {name: fields[name].get_default(call_default_factory=True) for name in names}


def _member_exclude(member, names: tuple[str, ...]) -> dict:
    """What a fingerprint leaves out of a product: the fields it does not carry (the lists
    that find its stock records and children aside), and the values its stock records do
    not carry."""
    exclude: dict = {
        name: True for name in names if not carried(member, name) and name not in FOUND_LISTS
    }
    records = {}
    for i, sr in enumerate(member.stockrecords):
        left_out = [name for name in STOCK_FIELDS if not carried(sr, name)]
        if left_out:
            records[i] = dict.fromkeys(left_out, True)
    if records:
        exclude["stockrecords"] = records
    return exclude
