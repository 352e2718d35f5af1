"""The dependency rules of the house (ARCHITECTURE.md), read from the code's import statements.

Every import counts, also one inside a function: a lazy import is still a dependency."""

import ast
import sys
from functools import cache
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "productsync"
MAX_LINES = 450

FACES_ALLOWED = {
    "productsync.services",
    "productsync.report",
    "productsync.exports",
    "productsync.models",
    "productsync.feed_models",
    "productsync.conf",
    "productsync.exceptions",
    "productsync.signals",
    "productsync.records",
    "productsync.outcomes",
    # The feeds package's public names (FORMATS: the choices of --format), never a reader.
    "productsync.feeds",
}
# What one face may import beyond FACES_ALLOWED, and why.
FACE_EXTRAS = {
    "productsync.apps": {"productsync.checks"},  # registers the system checks in ready()
    # The import tool's views and forms, kept beside admin.py (its 450 lines).
    "productsync.admin": {
        "productsync.admin_import",
        "productsync.admin_feeds",
        "productsync.forms",
    },
    # The Feeds page shows messages as the run admin does.
    "productsync.admin_feeds": {"productsync.admin_import"},
    # The push endpoint's URLs name its view.
    "productsync.urls": {"productsync.views"},
    # The terminal's progress displays, kept beside sync_products (its 450 lines).
    "productsync.management.commands.sync_products": {"productsync.management.progress"},
    "productsync.management.commands.productsync_prune": {
        "productsync.management.commands.sync_products"  # the whole-number argument type
    },
}
READERS = {
    f"productsync.feeds.{name}"
    for name in ("csvfeed", "jsonfeed", "oscarcsv", "mapping", "mapping.files", "stockcsv")
    + ("xmlfeed", "xlsxfeed")
}
# Readers that use another reader's row helpers (not its dispatch: no cycle).
READER_HELPERS = {
    "productsync.feeds.oscarcsv": {"productsync.feeds.csvfeed"},
    # The mapping package's __init__ re-exports its reader.
    "productsync.feeds.mapping": {"productsync.feeds.mapping.files"},
    "productsync.feeds.mapping.files": {"productsync.feeds.csvfeed", "productsync.feeds.xmlfeed"},
    # Rows of CSVs, sheets and XML items in a mapping's shape.
    "productsync.feeds.mapping.rows": {"productsync.feeds.csvfeed", "productsync.feeds.xmlfeed"},
    # The mapping's field sets build our flat CSV payloads.
    "productsync.feeds.mapping.shapes": {"productsync.feeds.csvfeed"},
    "productsync.feeds.stockcsv": {"productsync.feeds.csvfeed"},
}
# Modules outside feeds/ that use one feeds module by name, and why.
FEEDS_USED_OUTSIDE = {
    "productsync.exports": {"productsync.feeds.csvfeed"},  # our CSV's column names
}


@cache
def modules() -> dict[str, Path]:
    """Dotted name → file of every productsync module (migrations left out)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.relative_to(PACKAGE).parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


@cache
def imports(name: str) -> frozenset[str]:
    """Every module the named module imports: `from a import b` counts as a.b when that is
    a productsync module, else as a; relative imports are resolved."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules() else base)
    return frozenset(found)


def own(name: str) -> set[str]:
    return {target for target in imports(name) if _within(target, "productsync")}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(names, bad) -> list[str]:
    return sorted(f"{name} imports {target}" for name in names for target in bad(name))


def faces() -> list[str]:
    return [
        name
        for name in modules()
        if name
        in (
            "productsync.admin",
            "productsync.admin_feeds",
            "productsync.tasks",
            "productsync.apps",
            "productsync.views",
            "productsync.urls",
        )
        or name.startswith("productsync.management.commands.")
    ]


def test_the_walk_sees_the_imports_it_judges():
    """The rules below judge what this walk finds: it must find lazy and relative imports."""
    assert "productsync.feeds.http" in imports("productsync.feeds.open")  # inside a function
    assert "productsync.feeds.csvfeed" in imports("productsync.feeds.open")  # from a import b
    assert "productsync.services" in imports("productsync.tasks")
    assert len(faces()) >= 6


def test_faces_import_only_the_public_api():
    """Rule 1: admin, tasks, apps and the commands use the services package, report,
    exports, models, conf, exceptions, signals, records: never a services submodule, the
    writer, sql or a reader."""

    def bad(name):
        allowed = FACES_ALLOWED | FACE_EXTRAS.get(name, set())
        return own(name) - allowed

    assert violations(faces(), bad) == []


def defined(name: str) -> set[str]:
    """The names a module defines itself (functions, classes, assignments), not imports."""
    found = set()
    for node in ast.parse(modules()[name].read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found.update(t.id for t in targets if isinstance(t, ast.Name))
    return found


def test_faces_take_from_helper_modules_only_what_they_define():
    """Rule 1 without a detour: a name a face takes from report, exports, models... is
    defined there, never imported from the writer or a reader and passed on. Only the
    services and feeds packages re-export, their own submodules' public names."""
    found = []
    for face in faces():
        path = modules()[face]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or node.module not in modules():
                continue
            if node.module in ("productsync.services", "productsync.feeds"):
                continue
            if node.module.startswith("productsync.") and node.module != face:
                own_names = defined(node.module)
                found += [
                    f"{face} takes {alias.name} from {node.module}, which imports it"
                    for alias in node.names
                    if alias.name not in own_names
                    and f"{node.module}.{alias.name}" not in modules()
                ]
    assert found == []


def test_only_the_writer_imports_oscar():
    """Rule 2."""

    def bad(name):
        if "writer" in modules()[name].relative_to(PACKAGE).parts[:-1]:
            return set()
        return {target for target in imports(name) if _within(target, "oscar")}

    assert violations(modules(), bad) == []


def feeds_modules() -> list[str]:
    return [name for name in modules() if _within(name, "productsync.feeds")]


def test_feeds_never_import_the_database_writer_or_services():
    """Rule 3: feeds read bytes into items; they never touch the database."""
    forbidden = (
        "django.db",
        "productsync.models",
        "productsync.writer",
        "productsync.services",
        "productsync.sql",
    )

    def bad(name):
        return {t for t in imports(name) if any(_within(t, f) for f in forbidden)}

    assert violations(feeds_modules(), bad) == []


def test_only_feeds_open_imports_the_readers():
    """Rule 3: open.py chooses the reader; readers never import open.py or the package (the
    dispatch), and only use another reader's row helpers where READER_HELPERS says."""

    def bad(name):
        if name in ("productsync.feeds.open", "productsync.feeds"):
            return set()
        found = {t for t in own(name) if t in READERS}
        if name in READERS:
            found |= {t for t in own(name) if t in ("productsync.feeds", "productsync.feeds.open")}
        return found - READER_HELPERS.get(name, set())

    assert violations(feeds_modules(), bad) == []


def test_only_feeds_open_imports_the_sources():
    """Rule 3: the transports (feeds/sources/) are chosen by open.py; they read no feed."""
    sources = "productsync.feeds.sources"

    def bad(name):
        if _within(name, sources):
            return {t for t in own(name) if t in READERS or t == "productsync.feeds.open"}
        if name == "productsync.feeds.open":
            return set()
        return {t for t in own(name) if _within(t, sources)}

    assert "productsync.feeds.sources.sftp" in modules()
    assert violations(modules(), bad) == []


def test_outside_feeds_only_the_package_is_imported():
    """The feeds package's __init__ is its public face; other uses are named in
    FEEDS_USED_OUTSIDE."""

    def bad(name):
        used = {t for t in own(name) if t.startswith("productsync.feeds.")}
        return used - FEEDS_USED_OUTSIDE.get(name, set())

    outside = [name for name in modules() if not _within(name, "productsync.feeds")]
    assert violations(outside, bad) == []


def test_base_modules_import_nothing_above_them():
    """Rule 4: records, outcomes, batching, sql, addresses and http are imported by the app,
    never the other way round (records may use exceptions, conf and wording, the words of its
    messages, which imports nothing)."""
    allowed = {
        "productsync.records": {
            "productsync.exceptions",
            "productsync.conf",
            "productsync.wording",
        },
        "productsync.wording": set(),
        "productsync.outcomes": {"productsync.exceptions", "productsync.records"},
        "productsync.batching": set(),
        "productsync.sql": set(),
        # The one guarded outgoing session: its settings, and one_line for its messages.
        "productsync.http": {"productsync.addresses", "productsync.conf", "productsync.records"},
        "productsync.addresses": {"productsync.conf"},
    }
    present = [name for name in allowed if name in modules()]
    assert {"productsync.records", "productsync.batching", "productsync.http"} <= set(present)

    assert violations(present, lambda name: own(name) - allowed[name]) == []


def test_no_import_cycle():
    """Rule 5: the import graph of productsync is acyclic (a package's submodule importing
    the package itself counts)."""
    graph = {name: own(name) & modules().keys() for name in modules()}
    done: set[str] = set()
    cycles = []

    def visit(name, path):
        if name in path:
            cycles.append(" → ".join([*path[path.index(name) :], name]))
            return
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def test_no_module_over_450_lines():
    """Rule 6."""
    counts = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert "productsync.services.run" in counts and "productsync.writer.batch" in counts
    assert {name: n for name, n in counts.items() if n > MAX_LINES} == {}


MAX_FUNCTION_LINES = 60


def test_no_function_over_60_lines():
    """A long procedure becomes named steps a reader can skim."""
    long = sorted(
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    )
    assert long == []


def test_no_private_name_is_imported_from_another_module():
    """Rule 6: a `_name` is private to its module; what another module needs is named
    without the underscore."""
    borrowed = sorted(
        f"{name} imports {node.module}.{alias.name}"
        for name, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("productsync")
        for alias in node.names
        if alias.name.startswith("_")
    )
    assert borrowed == []


def migration_imports(path: Path) -> set[str]:
    """The modules a migration imports (a relative import counts as the package's own)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("productsync" if node.level else node.module)
    return found


def test_migrations_import_only_django_and_the_standard_library():
    """A migration is frozen: it runs on the historical models (apps.get_model) and holds
    its own SQL, so that a later change of productsync's code never changes what an old
    migration does. It imports no productsync code, nor Oscar's (today's models)."""
    paths = sorted((PACKAGE / "migrations").glob("*.py"))
    assert len(paths) >= 10

    def allowed(module: str) -> bool:
        top = module.partition(".")[0]
        return top == "django" or top in sys.stdlib_module_names

    bad = sorted(
        f"{path.name} imports {module}"
        for path in paths
        for module in migration_imports(path)
        if not allowed(module)
    )
    assert bad == []
