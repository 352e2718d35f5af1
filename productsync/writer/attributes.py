"""Product attributes: a class's attributes and their options, feed values typed against them,
and the values of a batch's products written in bulk."""

from typing import NamedTuple

from django.db.models import Q
from oscar.core.loading import get_model

from productsync.attribute_values import attribute_value
from productsync.conf import app_settings
from productsync.exceptions import RecordError
from productsync.outcomes import ValidItem
from productsync.ownership import carried
from productsync.sql import delete_quietly
from productsync.writer.sanitise import html_clean

ProductAttribute = get_model("catalogue", "ProductAttribute")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
AttributeOption = get_model("catalogue", "AttributeOption")
AttributeOptionGroup = get_model("catalogue", "AttributeOptionGroup")
MultiOption = ProductAttributeValue.value_multi_option.through


class Attribute(NamedTuple):
    """A product class's attribute as the writer needs it."""

    id: int
    kind: str  # ProductAttribute.type
    group_id: int | None  # its option group
    group_name: str
    name: str  # as shoppers read it


class ValuePlan(NamedTuple):
    """One attribute value of an item to write (value None: remove it)."""

    prefix: str  # the field prefix of the item's product or child
    attribute_id: int
    kind: str
    group_id: int | None
    value: object


class Attributes:
    """The attributes of product classes and the options of option groups, read when first
    needed and cached for a run."""

    def __init__(self) -> None:
        self._by_class: dict[int, dict[str, Attribute]] = {}  # by product class id, code
        self._options: dict[int, dict[str, int]] = {}  # by option group id: option -> id

    def forget(self) -> None:
        """Drop the caches: a rollback may have undone rows they point at."""
        self._by_class.clear()
        self._options.clear()

    def _class_attributes(self, class_id: int) -> dict[str, Attribute]:
        if class_id not in self._by_class:
            rows = ProductAttribute.objects.filter(product_class_id=class_id).values_list(
                "code", "id", "type", "option_group_id", "option_group__name", "name"
            )
            self._by_class[class_id] = {
                code: Attribute(pk, kind, group, group_name or "", name)
                for code, pk, kind, group, group_name, name in rows
            }
        return self._by_class[class_id]

    def attribute(
        self, class_id: int, code: str, declared: str | None = None, name: str | None = None
    ) -> Attribute | None:
        """The class's attribute of that code. An unknown code is created: of the type the
        item declares (with an option group of its own for option types), else as text when
        PRODUCTSYNC['CREATE_ATTRIBUTES'] allows; else None. Named as the item names it for
        shoppers, else after its code; one named after its code takes the item's name."""
        attributes = self._class_attributes(class_id)
        default = code.replace("_", " ")
        if code not in attributes and (declared or app_settings.CREATE_ATTRIBUTES):
            kind, group = declared or "text", None
            if kind in ("option", "multi_option"):
                group = AttributeOptionGroup.objects.create(name=(name or default)[:128])
                self._options[group.pk] = {}
            created = ProductAttribute.objects.create(
                product_class_id=class_id,
                code=code,
                name=name or default,
                type=kind,
                option_group=group,
            )
            group_id, group_name = (group.pk, group.name) if group else (None, "")
            attributes[code] = Attribute(created.pk, kind, group_id, group_name, name or default)
        found = attributes.get(code)
        if found is not None and name and found.name == default and name != default:
            ProductAttribute.objects.filter(pk=found.id).update(name=name)
            found = attributes[code] = found._replace(name=name)
        return found

    def group_options(self, group_id: int) -> dict[str, int]:
        if group_id not in self._options:
            self._options[group_id] = dict(
                AttributeOption.objects.filter(group_id=group_id).values_list("option", "pk")
            )
        return self._options[group_id]

    def resolve(self, items: list[ValidItem], class_id, fail) -> dict[int, list[ValuePlan]]:
        """Type every attribute value against the item's product class; fail the items with a
        value that does not fit. Returns, by item position, the values to write (value None:
        remove it); class_id gives a product class's id by name. Missing options of the items
        that pass are created."""
        plans: dict[int, list[ValuePlan]] = {}
        missing_options: set[tuple[int, str]] = set()
        for item in items:
            item_class = class_id(item.record.product_class, item.record.class_options)
            plan, wanted = [], set()
            try:
                for prefix, member in item.record.members():
                    for code, raw in member.attributes.items():
                        attribute, value = self._typed_value(item, item_class, prefix, code, raw)
                        kind, group_id = attribute.kind, attribute.group_id
                        if kind in ("option", "multi_option") and value is not None:
                            known = self.group_options(group_id)
                            names = [value] if kind == "option" else value
                            wanted.update((group_id, n) for n in names if n not in known)
                        plan.append(ValuePlan(prefix, attribute.id, kind, group_id, value))
            except RecordError as exc:
                fail(item, exc.field, str(exc))
                continue
            missing_options |= wanted
            plans[item.position] = plan
        if missing_options:
            options = AttributeOption.objects.bulk_create(
                [AttributeOption(group_id=g, option=name) for g, name in sorted(missing_options)]
            )
            for option in options:
                self._options[option.group_id][option.option] = option.pk
        return plans

    def _typed_value(self, item: ValidItem, class_id: int, prefix: str, code: str, raw):
        """The class's attribute for code and the feed value converted to its type; raise
        RecordError naming the attribute when either does not fit."""
        field = f"{prefix}attributes.{code}"
        declared = item.record.attribute_types.get(code)
        name = item.record.attribute_names.get(code)
        attribute = self.attribute(class_id, code, declared, name)
        if attribute is None:
            raise RecordError(
                f"{field}: product class {item.record.product_class!r} has no attribute "
                f"{code!r} (PRODUCTSYNC['CREATE_ATTRIBUTES'] would create it as text)",
                field,
            )
        if raw is None:
            return attribute, None
        kind, group_id = attribute.kind, attribute.group_id
        try:
            value = attribute_value(kind, raw)
        except ValueError as exc:
            raise RecordError(f"{field}: {exc}", field) from None
        if kind == "richtext":  # Oscar shows it unescaped, as it does a description
            value = html_clean(value)
        if kind in ("option", "multi_option"):
            if group_id is None:
                raise RecordError(f"{field}: the {kind} attribute has no option group", field)
            known = self.group_options(group_id)
            unknown = [n for n in ([value] if kind == "option" else value) if n not in known]
            # Options of an attribute the item declares are the feed's to add.
            if unknown and not (declared or app_settings.CREATE_ATTRIBUTE_OPTIONS):
                raise RecordError(
                    f"{field}: {unknown[0]!r} is not an option of group {attribute.group_name!r} "
                    "(PRODUCTSYNC['CREATE_ATTRIBUTE_OPTIONS'] would add it)",
                    field,
                )
        return attribute, value

    def write(self, plans: dict[int, list[ValuePlan]], member_ids) -> None:
        """Upsert the attribute values of the written products in bulk: one query to remove the
        nulled ones, one upsert, and two for the options of multi_option values."""
        values, removed, multi = [], Q(), {}
        for position, plan in plans.items():
            for prefix, attr_id, kind, group_id, value in plan:
                product_id = member_ids[(position, prefix)]
                if value is None:
                    removed |= Q(product_id=product_id, attribute_id=attr_id)
                    continue
                row = ProductAttributeValue(product_id=product_id, attribute_id=attr_id)
                if kind == "option":
                    row.value_option_id = self._options[group_id][value]
                elif kind == "multi_option":
                    multi[(product_id, attr_id)] = [self._options[group_id][v] for v in value]
                else:
                    setattr(row, f"value_{kind}", value)
                values.append(row)
        if removed:
            ProductAttributeValue.objects.filter(removed).delete()
        value_fields = [
            f"value_{kind}"
            for kind in ("text", "integer", "boolean", "float", "richtext", "date", "datetime")
        ] + ["value_option"]
        ProductAttributeValue.objects.bulk_create(
            values,
            update_conflicts=True,
            unique_fields=["attribute", "product"],
            update_fields=value_fields,
        )
        multi_ids = {
            row.pk: multi[(row.product_id, row.attribute_id)]
            for row in values
            if (row.product_id, row.attribute_id) in multi
        }
        if multi_ids:
            delete_quietly(MultiOption.objects.filter(productattributevalue_id__in=list(multi_ids)))
            MultiOption.objects.bulk_create(
                [
                    MultiOption(productattributevalue_id=pav_id, attributeoption_id=option_id)
                    for pav_id, options in multi_ids.items()
                    for option_id in options
                ]
            )


def attributes_clear(changed, member_ids) -> None:
    """Remove every attribute value of the existing products whose items carry an empty
    attributes table: given and empty means none (not given: left as they are)."""
    cleared = [
        member_ids[(item.position, prefix)]
        for item, _ in changed
        for prefix, member in item.record.members()
        if carried(member, "attributes") and not member.attributes
    ]
    if cleared:
        ProductAttributeValue.objects.filter(product_id__in=cleared).delete()
