"""Partial feed items: keyed by upc, or by partner and partner_sku, carrying what they change."""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from productsync.exceptions import RecordError
from productsync.records import (
    JSON_TYPES,
    StockRecordIn,
    Title,
    Unparsed,
    Upc,
    payload_dump,
    text_storable,
)
from productsync.wording import error_location, validation_message

# What a partial item may change; anything absent or null is left as it is.
PRODUCT_FIELDS = ("title", "description", "is_public")
STOCK_FIELDS = ("price", "currency", "num_in_stock")
# Fields of a full item that a partial item cannot change: refused, never silently ignored.
REFUSED = ("barcode", "product_class", "categories", "attributes", "images", "children")
KNOWN_KEYS = frozenset(("upc", "stockrecords", "partner", "partner_sku", *PRODUCT_FIELDS))
KNOWN_KEYS |= frozenset((*STOCK_FIELDS, *REFUSED))
CHANGES = (
    f"a partial item changes {', '.join(PRODUCT_FIELDS)} of a product (keyed by upc) and "
    f"{', '.join(STOCK_FIELDS)} of its stock records (keyed by partner and partner_sku)"
)


class _Product(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, cache_strings="keys")

    upc: Upc
    title: Title | None = None
    description: Annotated[str, AfterValidator(text_storable)] | None = None
    is_public: bool | None = None
    stockrecords: Annotated[list[StockRecordIn], Field(max_length=100)] = Field(
        default_factory=list
    )


@dataclass(frozen=True, slots=True)
class StockChange:
    """New values of some fields of one existing stock record."""

    partner: str
    partner_sku: str
    values: dict[str, Any]  # by StockRecord field name: price, price_currency, num_in_stock


@dataclass(frozen=True, slots=True)
class PartialRecord:
    """A validated partial item: the product (upc, or '' for a stock item) and what changes."""

    upc: str
    values: dict[str, Any]  # by Product field name
    stock: tuple[StockChange, ...]


@dataclass(frozen=True, slots=True)
class PartialItem:
    position: int
    record: PartialRecord
    payload: Any = None

    def raw(self) -> str:
        return payload_dump(self.payload)


@dataclass(slots=True)
class StockItem:
    """A stock-file row that passed the lean checks (stock_item): the new values of one
    stock record, kept flat, one object a row. Its record is the PartialRecord that
    partial_parse would have made of it."""

    position: int
    partner: str
    partner_sku: str
    price: Decimal | None
    currency: str | None
    num_in_stock: int | None
    payload: Any = None
    made: PartialRecord | None = None  # the record, made on first use

    @property
    def record(self) -> PartialRecord:
        if self.made is None:
            values = {
                "price": self.price,
                "price_currency": self.currency,
                "num_in_stock": self.num_in_stock,
            }
            values = {key: v for key, v in values.items() if v is not None}
            change = StockChange(self.partner, self.partner_sku, values)
            self.made = PartialRecord("", {}, (change,))
        return self.made

    def raw(self) -> str:
        return payload_dump(self.payload)


# The lean checks of a stock row: only what certainly passes StockRecordIn unchanged goes
# this way; anything else (whitespace, non-ASCII text, a number pydantic would read
# differently or refuse) goes through partial_parse, which names the bad field.
LEAN_KEYS = frozenset(("partner", "partner_sku", *STOCK_FIELDS))
_PRICE = re.compile(r"(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?")
_COUNT = re.compile(r"0|[1-9][0-9]{0,9}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_INT_MAX = 2_147_483_647


def _lean_text(value: Any) -> bool:
    return (
        type(value) is str
        and 0 < len(value) <= 128
        and value.isascii()
        and "\x00" not in value
        and value.strip() == value
    )


def stock_item(position: int, payload: Any) -> StockItem | None:
    """The stock item of a payload of partner, partner_sku and some of price, currency and
    num_in_stock, checked without pydantic; None when it needs partial_parse."""
    if type(payload) is not dict or not payload.keys() <= LEAN_KEYS:
        return None
    get = payload.get
    partner, sku = get("partner"), get("partner_sku")
    if not (_lean_text(partner) and _lean_text(sku)):
        return None
    price, currency, count = get("price"), get("currency"), get("num_in_stock")
    if price is not None:
        if type(price) is not str or _PRICE.fullmatch(price) is None:
            return None
        price = Decimal(price)
    if currency is not None and (type(currency) is not str or not _CURRENCY.fullmatch(currency)):
        return None
    if count is not None:
        if type(count) is str and _COUNT.fullmatch(count) is not None:
            count = int(count)
        elif type(count) is not int:
            return None
        if not 0 <= count <= _INT_MAX:
            return None
    return StockItem(position, partner, sku, price, currency, count, payload)


def _stock_change(sr: StockRecordIn) -> StockChange:
    values = {"price": sr.price, "price_currency": sr.currency, "num_in_stock": sr.num_in_stock}
    return StockChange(
        sr.partner, sr.partner_sku, {key: v for key, v in values.items() if v is not None}
    )


def _validated(model, payload: dict, prefix: str = ""):
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = prefix + error_location(first["loc"])
        raise RecordError(validation_message(first, where), field=where) from None


def partial_parse(payload: Any) -> PartialRecord:
    """Validate one raw item of a partial feed; raise RecordError naming the first bad field.
    An item with a upc changes that product (and its stock records); one without, keyed by
    partner and partner_sku (at the top level, or as its only stock record), one stock record."""
    if isinstance(payload, Unparsed):
        raise RecordError(payload.message)
    if not isinstance(payload, dict):
        kind = "null" if payload is None else JSON_TYPES.get(type(payload), "a number")
        raise RecordError(f"item must be an object, not {kind}")
    for key in REFUSED:
        if payload.get(key) not in (None, "", [], {}):
            raise RecordError(f"{key}: {CHANGES}; {key} is not one of them", field=key)
    if payload.get("upc") is not None:
        for key in ("partner", "partner_sku", *STOCK_FIELDS):
            if payload.get(key) is not None:
                raise RecordError(
                    f"{key}: an item with a upc gives stock changes in stockrecords", field=key
                )
        product = _validated(_Product, payload)
        changes = tuple(_stock_change(sr) for sr in product.stockrecords)
        keys = [(c.partner, c.partner_sku) for c in changes]
        if len(set(keys)) != len(keys):
            raise RecordError(
                "stockrecords: a partner_sku of one partner appears twice", field="stockrecords"
            )
        values = {key: getattr(product, key) for key in PRODUCT_FIELDS}
        return PartialRecord(
            product.upc, {key: v for key, v in values.items() if v is not None}, changes
        )
    for key in PRODUCT_FIELDS:
        if payload.get(key) is not None:
            raise RecordError(
                f"{key}: an item without a upc changes one stock record (price, currency, "
                f"num_in_stock); give the product's upc to change its {key}",
                field=key,
            )
    stock, prefix = payload, ""
    records = payload.get("stockrecords")
    if records is not None and payload.get("partner_sku") is None:
        if not isinstance(records, list) or len(records) != 1:
            raise RecordError(
                "stockrecords: an item without a upc changes exactly one stock record",
                field="stockrecords",
            )
        stock, prefix = records[0], "stockrecords[0]."
    if not isinstance(stock, dict) or stock.get("partner_sku") in (None, ""):
        raise RecordError(
            "upc: a partial item is keyed by upc, or by partner and partner_sku", field="upc"
        )
    return PartialRecord("", {}, (_stock_change(_validated(StockRecordIn, stock, prefix)),))
