"""Typed feed records, their validation, and the outcome of each item and batch."""

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from productsync.conf import app_settings
from productsync.exceptions import RecordError
from productsync.wording import error_location, validation_message


def text_storable(text: str) -> str:
    """Refuse text no database can store: PostgreSQL rejects NUL, UTF-8 has no lone surrogates."""
    if "\x00" in text:
        raise ValueError("contains a NUL character (\\x00), which cannot be stored")
    if len(text) > 1024 and len(text) > app_settings.MAX_TEXT_LENGTH:
        raise ValueError(
            f"is {len(text)} characters, longer than PRODUCTSYNC['MAX_TEXT_LENGTH'] "
            f"({app_settings.MAX_TEXT_LENGTH})"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains an unpaired surrogate, which is not valid Unicode") from None
    return text


def number_text_plain(text: str) -> bool:
    """Whether a number's text is as people write one: Decimal and int() also take "1_000",
    "+5" and other scripts' digits ("١٢.٥٠"), a feed's mistakes never read as numbers."""
    return text.isascii() and "_" not in text and not text.strip().startswith("+")


def _plain_number(error: str, what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str) and not number_text_plain(value):
            raise PydanticCustomError(error, f"{{value}} is not {what}", {"value": repr(value)})
        return value

    return BeforeValidator(check)


def _not_bool(value: Any) -> Any:
    """JSON true/false are not counts; lax mode would take them as 1/0."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true/false")
    return value


# Category depth is bounded by treebeard's path: 255 characters, 4 per level.
MAX_CATEGORY_DEPTH = 63


# A backslash keeps the next ">", "|" or backslash in a category's name ("Sizes \\> XL").
_BREADCRUMB_TOKEN = re.compile(r"\\[\\>|]|>|[^\\>]+|\\")
_NAME_ESCAPED = re.compile(r"\\(?=[\\>|]|$)|[>|]")


def breadcrumb_names(text: str) -> list[str]:
    """A breadcrumb's category names: split at each unescaped ">", stripped, unescaped."""
    names: list[list[str]] = [[]]
    for token in _BREADCRUMB_TOKEN.findall(text):
        if token == ">":
            names.append([])
        else:
            names[-1].append(token[1] if len(token) == 2 and token[0] == "\\" else token)
    return ["".join(name).strip() for name in names]


def category_name_escaped(name: str) -> str:
    """A category's name as breadcrumb_names reads it back: ">", "|" and "\\" escaped."""
    return _NAME_ESCAPED.sub(lambda match: "\\" + match.group(0), name)


def _breadcrumb(text: str) -> str:
    names = breadcrumb_names(text)
    if not all(names):
        raise ValueError("has an empty category name between '>' separators")
    if any(len(name) > 255 for name in names):
        raise ValueError("has a category name longer than 255 characters")
    if len(names) > MAX_CATEGORY_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_CATEGORY_DEPTH} categories")
    return text


def text(strip: bool = True, **constraints: Any) -> Any:
    """A string type with constraints, stripped unless not strip, refused when unstorable."""
    return Annotated[
        str, StringConstraints(strip_whitespace=strip, **constraints), AfterValidator(text_storable)
    ]


def _not_blank(title: str) -> str:
    """A title of only whitespace is refused as an empty one is: "title: '  ' is too short"."""
    if not title.strip():
        raise PydanticCustomError("string_too_short", "is only whitespace", {"min_length": 1})
    return title


# A title is kept exactly as the feed gives it, surrounding spaces too: an export comes back
# the same. A child's blank title is "": none of its own, it shows its parent's (get_title).
Title = Annotated[text(strip=False, max_length=255), AfterValidator(_not_blank)]
ChildTitle = Annotated[text(strip=False, max_length=255), AfterValidator(lambda t: t.strip() and t)]

StockPrice = Annotated[
    Decimal,
    _plain_number("decimal_parsing", "a number"),
    Field(ge=0, max_digits=12, decimal_places=2),
]
StockCount = Annotated[
    int,
    BeforeValidator(_not_bool),
    _plain_number("int_parsing", "a whole number"),
    Field(ge=0, le=2_147_483_647),
]


class StockRecordIn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, cache_strings="keys")

    partner: text(min_length=1, max_length=128)
    partner_sku: text(min_length=1, max_length=128)
    price: StockPrice | None = None
    currency: text(pattern=r"^[A-Z]{3}$") | None = None
    num_in_stock: StockCount | None = None


Upc = text(min_length=1, max_length=64)
# Oscar's UPC where it is not the item's key: empty (or null) for none (writer product_upc).
Barcode = Annotated[text(max_length=64), BeforeValidator(lambda v: "" if v is None else v)]
# Oscar's ProductAttribute.code rule: a Python identifier.
AttributeCode = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z_][0-9a-zA-Z_]*$", max_length=128)
]


def _plain_value(value: Any) -> Any:
    if isinstance(value, str):
        return text_storable(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [text_storable(v) for v in value]
    raise PydanticCustomError(
        "attribute_value", "expected text, a number, true or false, a list of names, or null"
    )


# Typed against the product class's attribute in the writer (attribute_value); null removes.
AttributeValue = Annotated[Any, AfterValidator(_plain_value)]
Attributes = dict[AttributeCode, AttributeValue]
ImageRef = text(min_length=1, max_length=2000)
# Oscar's Product.slug: a SlugField (Unicode letters, digits, _ and -).
Slug = text(min_length=1, max_length=255, pattern=r"^[-\w]+$")
AttributeType = Literal[
    "text", "richtext", "integer", "float", "boolean", "date", "datetime", "option", "multi_option"
]


class ClassOptions(BaseModel):
    """What the item says of its product class: created so, or changed to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    track_stock: bool | None = None
    requires_shipping: bool | None = None


# Text that may be empty: JSON null clears it, as an empty CSV cell does.
EmptyableText = Annotated[
    str, BeforeValidator(lambda v: "" if v is None else v), AfterValidator(text_storable)
]

# Empty defaults are factories: pydantic deep-copies a literal [] or {} for every record.


class ChildRecord(BaseModel):
    """One variant of a parent product. Class and categories are the parent's (Oscar's rule);
    they are declared only so that a feed giving them gets a clear error."""

    model_config = ConfigDict(extra="ignore", frozen=True, cache_strings="keys")

    upc: Upc
    barcode: Barcode = None  # left out: None; null: "" (none)
    title: ChildTitle = ""
    slug: Slug | None = None
    description: EmptyableText = ""
    is_public: bool = True
    attributes: Attributes = Field(default_factory=dict)
    stockrecords: Annotated[list[StockRecordIn], Field(max_length=100)] = Field(
        default_factory=list
    )
    images: list[ImageRef] = Field(default_factory=list)
    product_class: Any = None
    categories: Any = None


class ProductRecord(BaseModel):
    """One product of a feed, validated; with children it is an Oscar parent product."""

    model_config = ConfigDict(extra="ignore", frozen=True, cache_strings="keys")

    upc: Upc
    barcode: Barcode = None  # left out: None; null: "" (none)
    title: Title
    product_class: text(min_length=1, max_length=128)
    description: EmptyableText = ""
    categories: Annotated[
        list[Annotated[text(min_length=1, max_length=1024), AfterValidator(_breadcrumb)]],
        Field(max_length=100),
    ] = Field(default_factory=list)
    is_public: bool = True
    stockrecords: Annotated[list[StockRecordIn], Field(max_length=100)] = Field(
        default_factory=list
    )
    attributes: Attributes = Field(default_factory=dict)
    images: list[ImageRef] = Field(default_factory=list)
    children: list[ChildRecord] = Field(default_factory=list)
    # A new product's slug (else made from its title), its class's options, and the types and
    # shoppers' names of the attributes the class lacks, to create them (with their options).
    slug: Slug | None = None
    class_options: ClassOptions | None = None
    attribute_types: dict[AttributeCode, AttributeType] = Field(default_factory=dict)
    attribute_names: dict[AttributeCode, text(min_length=1, max_length=128)] = Field(
        default_factory=dict
    )

    def members(self) -> list[tuple[str, "ProductRecord | ChildRecord"]]:
        """The products of this unit with their field path prefix: itself, then its children."""
        return [("", self)] + [(f"children[{i}].", c) for i, c in enumerate(self.children)]


KNOWN_KEYS = frozenset(ProductRecord.model_fields)


@dataclass(frozen=True, slots=True)
class Unparsed:
    """An item a reader could not decode (a bad JSON line, a ragged CSV row): kept as text."""

    text: str
    message: str
    # A mapped item that failed validation: the field at fault and the item's upc.
    field: str = ""
    upc: str = ""


JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true/false"}


def printable(text: str) -> str:
    """Text made safe to show and store on one line: control characters, NUL and unpaired
    surrogates become escapes, so feed text cannot drive a terminal or break a database."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def one_line(text: object) -> str:
    """Error text (from a database driver, a parser) on one storable, printable line."""
    return printable(" ".join(str(text).split()))


def record_parse(payload: Any) -> ProductRecord:
    """Validate one raw feed item; raise RecordError naming the first bad field."""
    if isinstance(payload, Unparsed):
        raise RecordError(payload.message, field=payload.field)
    if not isinstance(payload, dict):
        kind = "null" if payload is None else JSON_TYPES.get(type(payload), "a number")
        raise RecordError(f"item must be an object, not {kind}")
    try:
        record = ProductRecord.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = error_location(first["loc"])
        raise RecordError(validation_message(first, where), field=where) from None
    _check_structure(record)
    skus = set()
    for prefix, member in record.members():
        for sr in member.stockrecords:
            if (sr.partner, sr.partner_sku) in skus:
                raise RecordError(
                    f"{prefix}stockrecords: partner_sku {sr.partner_sku!r} of {sr.partner!r} "
                    "appears twice",
                    field=f"{prefix}stockrecords",
                )
            skus.add((sr.partner, sr.partner_sku))
    return record


def _check_structure(record: ProductRecord) -> None:
    """Oscar's structure rules (Product.clean), checked before anything is written."""
    if not record.children:
        return
    if record.stockrecords:
        raise RecordError(
            "stockrecords: a product with children is an Oscar parent product, which has no "
            "stock records; give them to its children",
            field="stockrecords",
        )
    seen = {record.upc: "the parent"}
    for i, child in enumerate(record.children):
        where = f"children[{i}]"
        for key in ("product_class", "categories"):
            if getattr(child, key) is not None:
                raise RecordError(
                    f"{where}.{key}: a child product ({child.upc!r}) takes its parent's "
                    f"{key.replace('_', ' ')}; remove it from the child",
                    field=f"{where}.{key}",
                )
        if child.upc in seen:
            raise RecordError(
                f"{where}.upc: {child.upc!r} is also the upc of {seen[child.upc]}",
                field=f"{where}.upc",
            )
        seen[child.upc] = where


# The meaning of a stored raw fingerprint: a new version makes the next sync validate every
# item once (a fingerprint of another version never matches; the record's still decides).
# 2: the bytes of the item in the feed where the reader keeps them (JSON), else its JSON text.
FINGERPRINT_VERSION = "2"


def raw_fingerprint(payload: Any, context: str = "", raw: bytes | None = None) -> str:
    """A digest of an item as read (and of context: what else decides its writes), so an
    item the last sync wrote is recognised before it is validated: of its bytes in the feed
    (raw) when the reader kept them, else of its JSON text (a CSV row, a mapped item)."""
    digest = hashlib.blake2b(context.encode(), digest_size=15)
    if raw is None:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
        digest.update(b"\x00" + text.encode("utf-8", "surrogatepass"))
    else:
        digest.update(b"\x01" + raw)
    return FINGERPRINT_VERSION + digest.hexdigest()


def default_currency() -> str:
    return getattr(settings, "OSCAR_DEFAULT_CURRENCY", "GBP")


def payload_dump(payload: Any) -> str:
    """The raw payload as JSON text, kept with a failure so it can be fixed and resubmitted.
    Text that is not JSON keeps NUL as the escape \\x00 (databases cannot store NUL); JSON
    escapes unpaired surrogates so the text stays storable UTF-8."""
    if isinstance(payload, Unparsed):
        return payload.text.replace("\x00", "\\x00")
    text = json.dumps(payload, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(payload, default=str)
    return text
