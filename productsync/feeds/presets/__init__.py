"""The mapping files shipped for platform exports, by name, and telling them apart by the
columns of a CSV header."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
PRESETS = ("shopify", "woocommerce", "magento")


def preset_path(name: str) -> Path | None:
    """The mapping file of a preset, or None when there is no such preset."""
    return FOLDER / f"{name}.toml" if name in PRESETS else None
