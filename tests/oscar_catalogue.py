"""Oscar's own loaddata fixtures (../shared/data/oscar) expressed as productsync feeds."""

import json
from collections import defaultdict

from oscar.core.loading import get_model

from tests.conftest import shared_data


class Fixture:
    """The objects of one fixture file by model and pk."""

    def __init__(self, name: str) -> None:
        self.objects: dict[str, dict[int, dict]] = defaultdict(dict)
        for obj in json.loads(shared_data("oscar", name).read_text()):
            self.objects[obj["model"]][obj["pk"]] = obj["fields"]

    def __getitem__(self, model: str) -> dict[int, dict]:
        return self.objects[model]

    def upc(self, pk: int) -> str:
        """The product's upc; Oscar's fixtures leave most of them empty, so make one up."""
        return self["catalogue.product"][pk]["upc"] or f"oscar-{pk}"

    def create_schema(self) -> None:
        """Create the product classes, attributes and option groups, as a shop defines them
        before it syncs a feed."""
        ProductClass = get_model("catalogue", "ProductClass")
        ProductAttribute = get_model("catalogue", "ProductAttribute")
        AttributeOptionGroup = get_model("catalogue", "AttributeOptionGroup")
        AttributeOption = get_model("catalogue", "AttributeOption")
        classes = {
            pk: ProductClass.objects.create(name=f["name"], slug=f["slug"])
            for pk, f in self["catalogue.productclass"].items()
        }
        groups = {
            pk: AttributeOptionGroup.objects.create(name=f["name"])
            for pk, f in self["catalogue.attributeoptiongroup"].items()
        }
        for f in self["catalogue.attributeoption"].values():
            AttributeOption.objects.create(group=groups[f["group"]], option=f["option"])
        for f in self["catalogue.productattribute"].values():
            ProductAttribute.objects.create(
                product_class=classes[f["product_class"]],
                name=f["name"],
                code=f["code"],
                type=f["type"],
                option_group=groups.get(f["option_group"]),
                required=f["required"],
            )

    def attributes(self, product_pk: int) -> dict:
        """The product's attribute values as a feed gives them: plain JSON values."""
        out = {}
        attributes = self["catalogue.productattribute"]
        options = self["catalogue.attributeoption"]
        for f in self["catalogue.productattributevalue"].values():
            if f["product"] != product_pk:
                continue
            attribute = attributes[f["attribute"]]
            kind = attribute["type"]
            if kind == "option":
                value = options[f["value_option"]]["option"]
            elif kind == "multi_option":
                value = [options[pk]["option"] for pk in f["value_multi_option"]]
            else:
                value = f[f"value_{kind}"]
            out[attribute["code"]] = value
        return out

    def stockrecords(self, product_pk: int) -> list[dict]:
        partners = self["partner.partner"]
        return [
            {
                "partner": partners[f["partner"]]["name"],
                "partner_sku": f["partner_sku"],
                "price": f["price"],
                "currency": f["price_currency"],
                "num_in_stock": f["num_in_stock"],
            }
            for f in self["partner.stockrecord"].values()
            if f["product"] == product_pk
        ]

    def categories(self, product_pk: int) -> list[str]:
        categories = self["catalogue.category"]

        def breadcrumb(category: dict) -> str:
            path = category["path"]
            names = [
                c["name"]
                for c in sorted(categories.values(), key=lambda c: c["depth"])
                if path.startswith(c["path"])
            ]
            return " > ".join(names)

        return [
            breadcrumb(categories[f["category"]])
            for f in self["catalogue.productcategory"].values()
            if f["product"] == product_pk
        ]

    def feed(self) -> list[dict]:
        """One feed item per parent or standalone product, children nested in their parent."""
        products = self["catalogue.product"]
        classes = self["catalogue.productclass"]
        items = []
        for pk, f in products.items():
            if f.get("parent"):
                continue
            item = {
                "upc": self.upc(pk),
                "title": f["title"],
                "product_class": classes[f["product_class"]]["name"],
                "description": f["description"] or "",
                "categories": self.categories(pk),
                "attributes": self.attributes(pk),
                "stockrecords": self.stockrecords(pk),
            }
            children = [
                {
                    "upc": self.upc(child_pk),
                    "title": child["title"],
                    "attributes": self.attributes(child_pk),
                    "stockrecords": self.stockrecords(child_pk),
                }
                for child_pk, child in products.items()
                if child.get("parent") == pk
            ]
            if children:
                item["children"] = children
            items.append(item)
        return items
