"""The mapping files shipped for platform exports and Google Merchant Center feeds, by name,
and telling them apart by the columns of a CSV header."""

import functools
import tomllib
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
PRESETS = ("shopify", "woocommerce", "magento", "google")


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


def preset_detect(header: list[str]) -> str | None:
    """The preset whose `detect` columns the CSV header has, all of them."""
    cells = {cell.strip() for cell in header}
    return next((name for name, wanted in _detects().items() if wanted <= cells), None)
