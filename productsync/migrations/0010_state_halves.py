"""The drift digest in two halves (the rest of a product, then its stock records), so that a
stock file stamps its half alone. A stored digest that matched the product as it is now is
computed again in the new form; one that did not (the product had drifted) is cleared, so
that the next sync still repairs it."""

from django.db import migrations

from productsync.writer import drift


def _convert(schema_editor, new_form: bool) -> None:
    connection = schema_editor.connection
    stock, rest = drift._parts(connection.vendor)
    whole = f"MD5({drift._concat([rest[0], stock, *rest[1:]])})"  # the digest until now
    halves = drift._digest(connection.vendor)
    before, after = (whole, halves) if new_form else (halves, whole)
    table = drift._table(drift.SyncedProduct)
    state = drift._column(drift.SyncedProduct, table, "state")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"UPDATE {table} SET {connection.ops.quote_name('state')} = COALESCE((SELECT "
            f"CASE WHEN {state} = {before} THEN {after} ELSE '' END FROM "
            f"{drift._table(drift.Product)} p WHERE {drift._column(drift.Product, 'p', 'id')} = "
            f"{drift._column(drift.SyncedProduct, table, 'product')}), '')"
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
            lambda apps, schema_editor: _convert(schema_editor, True),
            lambda apps, schema_editor: _convert(schema_editor, False),
        ),
    ]
