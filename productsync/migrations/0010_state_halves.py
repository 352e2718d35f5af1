"""The drift digest in two halves (the rest of a product, then its stock records), so that a
stock file stamps its half alone. A stored digest that matched the product as it is now is
computed again in the new form; one that did not (the product had drifted) is cleared, so
that the next sync still repairs it.

Frozen: the digest's SQL is copied here as it stood when this migration was written, over
the historical models, so that a later change of the writer's digest leaves it as it ran."""

from django.db import migrations

# What the digest covers, by field name.
PRODUCT_FIELDS = ("title", "description", "is_public", "product_class", "structure", "parent")
STOCK_FIELDS = ("partner", "partner_sku", "price", "price_currency", "num_in_stock")
VALUE_FIELDS = (
    "attribute",
    "value_text",
    "value_integer",
    "value_boolean",
    "value_float",
    "value_richtext",
    "value_date",
    "value_datetime",
    "value_option",
)


class _Digest:
    """SQL expressions of product p's digest, over the historical models."""

    def __init__(self, apps, connection) -> None:
        self.quote = connection.ops.quote_name
        self.vendor = connection.vendor
        self.product = apps.get_model("catalogue", "Product")
        self.stockrecord = apps.get_model("partner", "StockRecord")
        self.category_link = apps.get_model("catalogue", "ProductCategory")
        self.value = apps.get_model("catalogue", "ProductAttributeValue")
        self.multi_option = self.value._meta.get_field("value_multi_option").remote_field.through
        self.synced = apps.get_model("productsync", "SyncedProduct")

    def column(self, model, alias: str, name: str) -> str:
        return f"{alias}.{self.quote(model._meta.get_field(name).column)}"

    def table(self, model) -> str:
        return self.quote(model._meta.db_table)

    def joined(self, model, alias: str, names) -> str:
        return " || ':' || ".join(
            f"COALESCE(CAST({self.column(model, alias, n)} AS TEXT), '~')" for n in names
        )

    def rows(self, model, alias, expression, key, owner=None, owner_alias="p") -> str:
        """The sorted list of expression over model's rows whose key points at the owner's
        row (the product p)."""
        owner = owner or self.product
        rows = f"FROM {self.table(model)} {alias} WHERE {self.column(model, alias, key)} = "
        rows += self.column(owner, owner_alias, "id")
        if self.vendor == "postgresql":
            return (
                f"COALESCE((SELECT string_agg({expression}, ',' ORDER BY {expression}) {rows}), "
                "'')"
            )
        # SQLite (before 3.44) has no ORDER BY in an aggregate; its group_concat takes the
        # rows of a subquery in the subquery's order.
        return (
            f"COALESCE((SELECT group_concat(e, ',') FROM (SELECT {expression} AS e {rows} "
            "ORDER BY e)), '')"
        )

    def parts(self) -> tuple[str, list[str]]:
        """Product p's stock records, and the rest (its fields, category links, attribute
        values and children)."""
        mo, value = self.multi_option, self.value
        options = self.rows(
            mo, "m", self.joined(mo, "m", ["attributeoption"]), "productattributevalue", value, "v"
        )
        sr = self.stockrecord
        stock = self.rows(sr, "sr", self.joined(sr, "sr", STOCK_FIELDS), "product")
        link = self.category_link
        values = self.joined(value, "v", VALUE_FIELDS) + f" || ':' || {options}"
        rest = [
            self.joined(self.product, "p", PRODUCT_FIELDS),
            self.rows(link, "pc", self.joined(link, "pc", ["category"]), "product"),
            self.rows(value, "v", values, "product"),
            self.rows(self.product, "c", self.joined(self.product, "c", ["id"]), "parent"),
        ]
        return stock, rest


def digests(apps, connection) -> tuple[str, str]:
    """Product p's digest before this migration (one MD5 of everything) and after it (16 hex
    digits of the rest, then 16 of the stock records), as SQL expressions."""
    stock, rest = _Digest(apps, connection).parts()
    whole = f"MD5({_concat([rest[0], stock, *rest[1:]])})"
    halves = f"SUBSTR(MD5({_concat(rest)}), 1, 16) || SUBSTR(MD5({stock}), 1, 16)"
    return whole, halves


def _concat(parts: list[str]) -> str:
    return " || '|' || ".join(parts)


def state_convert(apps, schema_editor, new_form: bool) -> None:
    """Store every digest that matches its product in the other form; clear the others."""
    connection = schema_editor.connection
    whole, halves = digests(apps, connection)
    before, after = (whole, halves) if new_form else (halves, whole)
    sql = _Digest(apps, connection)
    table = sql.table(sql.synced)
    state = sql.column(sql.synced, table, "state")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"UPDATE {table} SET {sql.quote('state')} = COALESCE((SELECT "
            f"CASE WHEN {state} = {before} THEN {after} ELSE '' END FROM "
            f"{sql.table(sql.product)} p WHERE {sql.column(sql.product, 'p', 'id')} = "
            f"{sql.column(sql.synced, table, 'product')}), '')"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("productsync", "0009_merge"),
        # The digest reads the products, their stock records, links and attribute values.
        ("catalogue", "0032_category_exclude_from_menu_category_long_description"),
        ("partner", "0007_partneraddress_code"),
    ]
    operations = [
        migrations.RunPython(
            lambda apps, schema_editor: state_convert(apps, schema_editor, True),
            lambda apps, schema_editor: state_convert(apps, schema_editor, False),
        ),
    ]
