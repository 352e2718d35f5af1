"""The mapping language: a foreign feed's columns or JSON paths onto our fields (files.py
loads a mapping and reads items with it; rules.py, shapes.py, grouping.py and
diagnostics.py are its parts)."""

from productsync.feeds.mapping.files import Mapping, mapping_for, mapping_load, mapping_parse

__all__ = ["Mapping", "mapping_for", "mapping_load", "mapping_parse"]
