"""Oscar's category tree as a batch writer finds and creates a breadcrumb's categories."""

from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import F
from oscar.core.loading import get_class, get_model

from productsync.exceptions import RecordError
from productsync.records import breadcrumb_names
from productsync.sql import insert_rows
from productsync.writer.locks import tree_lock

Category = get_model("catalogue", "Category")
create_from_breadcrumbs = get_class("catalogue.categories", "create_from_breadcrumbs")


class CategoryNode:
    """A category as the tree knows it: id (None until created), path and whether its
    children's ancestors are public."""

    __slots__ = ("id", "path", "public")

    def __init__(self, pk: int | None, path: str, public: bool) -> None:
        self.id, self.path, self.public = pk, path, public


class PlannedCategory(NamedTuple):
    """A category to create: its node (path, flags), name and depth in the tree."""

    node: CategoryNode
    name: str
    depth: int


class CategoryTree:
    """Oscar's category tree, read in one query, finding a breadcrumb's categories the way
    create_from_breadcrumbs does (by name under the parent; two of a name is an error). The
    missing ones are created in one insert, with the names, slugs, treebeard paths and flags
    that creating them one by one in the same order would give them."""

    def __init__(self) -> None:
        self.children: dict[str, dict[str, list[CategoryNode]]] = {}  # by parent path, name
        self.last_step: dict[str, int] = {}  # by parent path: the step of its last child
        self.planned: list[PlannedCategory] = []
        self.by_breadcrumb: dict[str, CategoryNode] = {}  # as given
        self.names: dict[str, str] = {}  # by path, for reading products back (snapshots)
        steplen = Category.steplen
        rows = Category.objects.values_list(
            "pk", "path", "name", "is_public", "ancestors_are_public"
        )
        for pk, path, name, is_public, ancestors_public in rows:
            parent, step = path[:-steplen], Category._str2int(path[-steplen:])
            node = CategoryNode(pk, path, is_public and ancestors_public)
            self.children.setdefault(parent, {}).setdefault(name, []).append(node)
            self.last_step[parent] = max(step, self.last_step.get(parent, 0))
            self.names[path] = name

    def node(self, breadcrumb: str) -> CategoryNode:
        """The last category of a breadcrumb ("A > B > C"), planned for creation with its
        missing ancestors when it does not exist; RecordError when a name is ambiguous."""
        if breadcrumb in self.by_breadcrumb:
            return self.by_breadcrumb[breadcrumb]
        if Category.node_order_by:
            # A forked Category that keeps siblings sorted: treebeard renumbers them on every
            # insert, so no path can be planned; Oscar's way, one category at a time.
            try:
                node = CategoryNode(create_from_breadcrumbs(breadcrumb).pk, "", True)
            except ValueError as exc:  # two categories of one name
                raise RecordError(f"categories: {breadcrumb!r}: {exc}", "categories") from None
            self.by_breadcrumb[breadcrumb] = node
            return node
        parent = CategoryNode(None, "", True)
        names = breadcrumb_names(breadcrumb)
        for depth, name in enumerate(names, start=1):
            found = self.children.setdefault(parent.path, {}).get(name)
            if found and len(found) > 1:
                where = f"under {' > '.join(names[: depth - 1])!r}" if depth > 1 else "at the top"
                raise RecordError(
                    f"categories: {breadcrumb!r}: there are {len(found)} categories named "
                    f"{name!r} {where} of the tree",
                    "categories",
                )
            if not found:
                step = self.last_step.get(parent.path, 0) + 1
                self.last_step[parent.path] = step
                path = Category._get_path(parent.path, depth, step)
                if len(path) != depth * Category.steplen:  # treebeard's PathOverflow
                    raise RecordError(
                        f"categories: {breadcrumb!r}: {' > '.join(names[: depth - 1])!r} has "
                        "no room for another child category",
                        "categories",
                    )
                found = [CategoryNode(None, path, parent.public)]
                self.children[parent.path][name] = found
                self.names[path] = name
                self.planned.append(PlannedCategory(found[0], name, depth))
            parent = found[0]
        self.by_breadcrumb[breadcrumb] = parent
        return parent

    @transaction.atomic(savepoint=False)
    def create(self) -> None:
        """Insert the planned categories and count them in their parents' numchild. Under
        the tree's lock, held to the commit: if another run added categories since the tree
        was read, IntegrityError says so before anything is inserted (the batch is redone)."""
        if not self.planned:
            return
        tree_lock()
        if Category.objects.filter(path__in=[node.path for node, _, _ in self.planned]).exists():
            raise IntegrityError("another run created categories since the tree was read")
        ids = insert_rows(
            Category,
            ["name", "slug", "path", "depth", "ancestors_are_public"],
            [
                (name, Category(name=name).generate_slug(), node.path, depth, node.public)
                for node, name, depth in self.planned
            ],
            returning="id",
        )
        added: dict[str, int] = {}  # by parent path
        for (node, _, depth), pk in zip(self.planned, ids, strict=True):
            node.id = pk
            if depth > 1:
                parent = node.path[: -Category.steplen]
                added[parent] = added.get(parent, 0) + 1
        self.planned.clear()
        by_count: dict[int, list[str]] = {}
        for path, count in added.items():
            by_count.setdefault(count, []).append(path)
        for count, paths in by_count.items():
            Category.objects.filter(path__in=paths).update(numchild=F("numchild") + count)
