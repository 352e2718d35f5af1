"""The mapping files shipped for platform exports and Google Merchant Center feeds, by name,
and telling them apart by the columns of a CSV header."""

import functools
import tomllib
from pathlib import Path
from typing import NamedTuple

FOLDER = Path(__file__).resolve().parent
PRESETS = ("shopify", "woocommerce", "magento", "google")
# Detect columns a header may lack and still be told apart as that platform's export.
ALLOWED_MISSING = 1


def preset_path(name: str) -> Path | None:
    """The mapping file of a preset, or None when there is no such preset."""
    return FOLDER / f"{name}.toml" if name in PRESETS else None


@functools.cache
def _detects() -> dict[str, frozenset]:
    out = {}
    for name in PRESETS:
        with open(FOLDER / f"{name}.toml", "rb") as f:
            out[name] = frozenset(tomllib.load(f).get("detect", ()))
    return out


class Detected(NamedTuple):
    """The preset a CSV header looks like, and the columns it expects that the header lacks."""

    name: str
    missing: tuple[str, ...]


def preset_detect(header: list[str]) -> Detected | None:
    """The preset whose `detect` columns the CSV header has: all of them, or all but one (an
    export that lost a column is still that platform's; the caller names what is missing)."""
    cells = {cell.strip() for cell in header}
    found = [
        Detected(name, tuple(sorted(wanted - cells)))
        for name, wanted in _detects().items()
        if len(wanted - cells) <= ALLOWED_MISSING
    ]
    return min(found, key=lambda detected: len(detected.missing), default=None)
