"""Search index upkeep for products written in bulk (bulk writes send no post_save)."""

import logging
from collections.abc import Iterable

from django.apps import apps
from oscar.core.loading import get_model

logger = logging.getLogger(__name__)


def search_index_update(product_ids: Iterable[int]) -> None:
    """Re-index the given products in every haystack connection that keeps an index: the ones
    Oscar's index covers (browsable products) are updated, the others removed. Haystack's
    simple backend keeps no index (it searches the database), so it is skipped."""
    if not apps.is_installed("haystack"):
        return
    from haystack import connections
    from haystack.backends.simple_backend import SimpleSearchBackend
    from haystack.exceptions import NotHandled

    Product = get_model("catalogue", "Product")
    product_ids = list(product_ids)
    for alias in connections.connections_info:
        backend = connections[alias].get_backend()
        if isinstance(backend, SimpleSearchBackend):
            continue
        try:
            index = connections[alias].get_unified_index().get_index(Product)
        except NotHandled:
            continue
        indexed = index.index_queryset(using=alias).filter(pk__in=product_ids)
        backend.update(index, indexed)
        kept = set(indexed.values_list("pk", flat=True))
        for pk in product_ids:
            if pk not in kept:
                backend.remove(f"{Product._meta.label_lower}.{pk}")
        logger.debug(
            "search index %s: %s updated, %s removed",
            alias,
            len(kept),
            len(product_ids) - len(kept),
        )
