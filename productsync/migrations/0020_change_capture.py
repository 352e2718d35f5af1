"""Change capture replaces the drift digest (and a run may compare by value, --compare): a synced product's `edits` counts the changes
others made since the sync wrote it (the triggers that count them are dropped before
every migrate and created after it, by productsync.writer.capture). A product whose stored digest no longer matches it
(it had drifted) starts with edits = 1, so that the next sync still repairs it.

Frozen: the digest's SQL is copied here as it stood when this migration was written, over
the historical models, so that it runs as it ran."""

from django.db import migrations, models

# What the digest covered, by field name.
PRODUCT_FIELDS = ("title", "description", "is_public", "product_class", "structure", "parent")
STOCK_FIELDS = ("partner", "partner_sku", "price", "price_currency")
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
    """SQL of product p's digest, over the historical models."""

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
        owner = owner or self.product
        rows = f"FROM {self.table(model)} {alias} WHERE {self.column(model, alias, key)} = "
        rows += self.column(owner, owner_alias, "id")
        if self.vendor == "postgresql":
            return f"COALESCE((SELECT string_agg({expression}, ',' ORDER BY {expression}) {rows}), '')"
        return (
            f"COALESCE((SELECT group_concat(e, ',') FROM (SELECT {expression} AS e {rows} "
            "ORDER BY e)), '')"
        )

    def digest(self) -> str:
        """16 hex digits of the product's fields, links, values and children, then 16 of its
        stock records."""
        mo, value, link, sr = self.multi_option, self.value, self.category_link, self.stockrecord
        options = self.rows(
            mo, "m", self.joined(mo, "m", ["attributeoption"]), "productattributevalue", value, "v"
        )
        stock = self.rows(sr, "sr", self.joined(sr, "sr", STOCK_FIELDS), "product")
        values = self.joined(value, "v", VALUE_FIELDS) + f" || ':' || {options}"
        rest = " || '|' || ".join(
            [
                self.joined(self.product, "p", PRODUCT_FIELDS),
                self.rows(link, "pc", self.joined(link, "pc", ["category"]), "product"),
                self.rows(value, "v", values, "product"),
                self.rows(self.product, "c", self.joined(self.product, "c", ["id"]), "parent"),
            ]
        )
        return f"SUBSTR(MD5({rest}), 1, 16) || SUBSTR(MD5({stock}), 1, 16)"

    def per_product(self, expression: str) -> str:
        """expression over the product p of each sync state row, for an UPDATE of them."""
        table = self.table(self.synced)
        return (
            f"(SELECT {expression} FROM {self.table(self.product)} p WHERE "
            f"{self.column(self.product, 'p', 'id')} = {self.column(self.synced, table, 'product')})"
        )


def _execute(connection, sql: str) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql)


def drifted_marked(apps, schema_editor) -> None:
    """edits = 1 where the stored digest is not the product's."""
    connection = schema_editor.connection
    sql = _Digest(apps, connection)
    table = sql.table(sql.synced)
    state = sql.column(sql.synced, table, "state")
    matches = sql.per_product(f"CASE WHEN {state} = {sql.digest()} THEN 0 ELSE 1 END")
    _execute(connection, f"UPDATE {table} SET {sql.quote('edits')} = COALESCE({matches}, 1)")


def digests_back(apps, schema_editor) -> None:
    """Undone (`migrate` has dropped the triggers before): the digest stored where no edit
    was counted, '' (drifted) where one was; no marker table."""
    connection = schema_editor.connection
    sql = _Digest(apps, connection)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS productsync_writing")
    table = sql.table(sql.synced)
    edits = sql.column(sql.synced, table, "edits")
    digest = sql.per_product(sql.digest())
    _execute(
        connection,
        f"UPDATE {table} SET {sql.quote('state')} = CASE WHEN {edits} = 0 THEN "
        f"COALESCE({digest}, '') ELSE '' END",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("productsync", "0019_feed_stock_authoritative_max_failures"),
        ("catalogue", "0032_category_exclude_from_menu_category_long_description"),
        ("partner", "0007_partneraddress_code"),
    ]
    operations = [
        migrations.AddField(
            model_name="syncedproduct",
            name="edits",
            field=models.BigIntegerField(db_default=0, default=0, verbose_name="edits"),
        ),
        migrations.RunPython(drifted_marked, digests_back),
        migrations.RemoveField(model_name="syncedproduct", name="state"),
        migrations.AddField(
            model_name="syncrun",
            name="compare",
            field=models.BooleanField(default=False, verbose_name="compared by value"),
        ),
    ]
