"""The README and the documentation site say what the code does: every setting documented
once with its check ids, every test a page cites still there, and a README read in minutes."""

import re

import pytest

from productsync.checks import check_settings
from productsync.conf import DEFAULTS
from tests.conftest import ROOT

DOCS = ROOT / "docs"
SETTINGS_PAGE = DOCS / "settings.md"
HEADING = re.compile(r"^### `([A-Z_]+)`$", re.M)
CHECK_ID = re.compile(r"productsync\.E\d{3}")
# Values no setting accepts: one of the wrong type, one too large for any limit.
BAD_VALUES = (object(), 10**12)


def settings_sections() -> dict[str, list[str]]:
    """Each setting's heading of the reference page → the texts under it (one per heading)."""
    text = SETTINGS_PAGE.read_text()
    parts = HEADING.split(text)
    sections: dict[str, list[str]] = {}
    for key, body in zip(parts[1::2], parts[2::2], strict=True):
        sections.setdefault(key, []).append(body.split("\n## ")[0])
    return sections


def test_every_setting_of_conf_is_documented_exactly_once():
    sections = settings_sections()
    assert sorted(sections) == sorted(DEFAULTS)
    assert {key: len(bodies) for key, bodies in sections.items() if len(bodies) != 1} == {}


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_a_settings_entry_gives_its_default_and_the_checks_that_refuse_it(key, settings):
    [body] = settings_sections()[key]
    default = re.search(r"^Default: `([^`]+)`", body.strip(), re.M)
    assert default, f"{key}: no 'Default: `...`' line"
    # The default as written is a Python expression of the value conf.py holds.
    assert eval(default[1], {"__builtins__": {}}) == DEFAULTS[key]  # noqa: S307
    raised = set()
    for bad in BAD_VALUES:
        settings.PRODUCTSYNC = {key: bad}
        raised |= {error.id for error in check_settings(None)}
    assert set(CHECK_ID.findall(body)) == raised


def test_every_check_id_is_in_the_settings_reference():
    defined = set(CHECK_ID.findall((ROOT / "productsync" / "checks.py").read_text()))
    documented = set(CHECK_ID.findall(SETTINGS_PAGE.read_text()))
    assert defined - documented == set()
    assert documented - defined == set()


def test_every_test_the_docs_cite_exists():
    files = {path.name: path for path in (ROOT / "tests").rglob("test_*.py")}
    missing = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for name, function in re.findall(r"(test_\w+\.py)(?:::(\w+))?", page.read_text()):
            source = files[name].read_text() if name in files else ""
            if not source or (function and f"def {function}(" not in source):
                missing.append(f"{page.name}: {name}::{function}")
    assert missing == []


def test_the_readme_is_under_12_kb():
    assert len((ROOT / "README.md").read_bytes()) < 12_000
