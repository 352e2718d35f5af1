"""A haystack engine for the demo shop that browses the database, so Oscar's catalogue and
category pages list the synced products without a search server (haystack's simple engine
turns Oscar's browse filters into search words and finds nothing)."""

from django.db.models import Q
from haystack.backends import BaseSearchQuery, SearchNode
from haystack.backends.simple_backend import SimpleEngine, SimpleSearchBackend
from haystack.models import SearchResult
from oscar.core.loading import get_model

# Oscar's index fields (oscar/apps/search/search_indexes.py) as Product lookups.
FIELDS = {
    "is_public": "is_public",
    "structure": "structure",
    "category": "categories",
    "upc": "upc",
    "product_class": "product_class__name",
}
SORTS = {"date_created": "date_created", "title_exact": "title", "date_updated": "date_updated"}


def _value(value):
    value = getattr(value, "query_string", value)  # haystack's inputs (AutoQuery, Exact)
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


def _words(text: str) -> Q:
    q = Q()
    for word in str(text).split():
        q &= Q(title__icontains=word) | Q(upc__iexact=word) | Q(description__icontains=word)
    return q


def _condition(node: SearchNode) -> Q:
    q = Q()
    for child in node.children:
        if isinstance(child, SearchNode):
            part = _condition(child)
        else:
            field, value = child
            name, _, lookup = field.partition("__")
            value = _value(value)
            if name in ("content", "text", "title"):
                part = _words(value)
            elif name in FIELDS:
                lookup = "in" if lookup == "in" else "exact"
                part = Q(**{f"{FIELDS[name]}__{lookup}": value})
            else:
                continue  # price ranges and other facets: not browsed
        q = (q | part) if node.connector == SearchNode.OR else (q & part)
    return ~q if node.negated else q


class BrowseSearchQuery(BaseSearchQuery):
    def build_query(self):
        return self.query_filter

    def build_query_fragment(self, field, filter_type, value):
        return ""


class BrowseSearchBackend(SimpleSearchBackend):
    """Searches products in the database; keeps no index (productsync skips the simple
    backend's subclasses when it updates search indexes)."""

    def search(self, query_string, start_offset=0, end_offset=None, sort_by=None, **kwargs):
        Product = get_model("catalogue", "Product")
        products = Product.objects.filter(
            _condition(query_string) if isinstance(query_string, SearchNode) else Q()
        ).distinct()
        order = [
            ("-" if s.startswith("-") else "") + SORTS[s.lstrip("-")]
            for s in sort_by or ()
            if s.lstrip("-") in SORTS
        ]
        products = products.order_by(*order, "-date_updated", "-pk")
        hits = products.count()
        page = products.select_related("product_class")[start_offset:end_offset]
        result_class = kwargs.get("result_class") or SearchResult
        results = []
        for product in page:
            result = result_class("catalogue", "product", product.pk, 0)
            result._model, result._object = Product, product
            results.append(result)
        return {"results": results, "hits": hits, "facets": {}}


class BrowseEngine(SimpleEngine):
    backend = BrowseSearchBackend
    query = BrowseSearchQuery
