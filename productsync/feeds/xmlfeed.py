"""XML feeds read as a stream: each item element becomes a dict and is freed before the next,
so memory stays flat whatever the file's size. Hostile XML is refused: no DTD (so no
external or expanding entities), no network, bounded depth, text and item sizes."""

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lxml import etree

from productsync.conf import app_settings
from productsync.exceptions import FeedError, SourceError
from productsync.feeds.bounds import CHUNK, PREVIEW, item_bound, too_long
from productsync.feeds.stream import MAX_DEPTH
from productsync.records import Unparsed

GOOGLE_NAMESPACE = "http://base.google.com/ns/1.0"
# libxml2 without XML_PARSE_HUGE refuses a text node or attribute longer than this.
PARSER_TEXT_BOUND = 10_000_000
# Leaf values outside the items kept for absolute paths (a channel's title): a few suffice.
DOCUMENT_VALUES = 256
# lxml's own defaults resolve internal entities and read a DTD a document names.
HARDENED = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
# A prolog: blanks, the XML declaration, comments and processing instructions.
_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)


class Row(NamedTuple):
    """An item element: the line it starts on, and its dict (or Unparsed)."""

    line: int
    data: dict | Unparsed


@dataclass
class Document:
    """What lies outside the items: leaf values by absolute path (`/rss/channel/title`)."""

    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemPaths:
    """The repeated element that makes an item: absolute (`/rss/channel/item`) or the last
    element names of a path at any depth (`item`, `channel/item`); several alternatives."""

    paths: tuple[str, ...]

    def matches(self, stack: list[str]) -> bool:
        for path in self.paths:
            parts = path.strip("/").split("/")
            if path.startswith("/") and stack == parts:
                return True
            if not path.startswith("/") and stack[-len(parts) :] == parts:
                return True
        return False


class Names:
    """Element and attribute names as `prefix:local`: the mapping's prefix for a namespace it
    declares, else the document's own prefix; the default namespace's names bare."""

    def __init__(self, namespaces: dict[str, str]) -> None:
        self.prefixes = {uri: prefix for prefix, uri in namespaces.items()}
        self._known: dict[tuple[str, str | None], str] = {}

    def of(self, tag: Any, prefix: str | None) -> str:
        key = (tag, prefix)
        name = self._known.get(key)
        if name is None:
            name = self._name(tag, prefix)
            if len(self._known) < 10_000:
                self._known[key] = name
        return name

    def _name(self, tag: Any, prefix: str | None) -> str:
        tag = str(tag)
        if not tag.startswith("{"):
            return tag
        uri, local = tag[1:].split("}", 1)
        prefix = self.prefixes.get(uri, prefix)
        return f"{prefix}:{local}" if prefix else local

    def attribute(self, key: str, element: Any) -> str:
        if not key.startswith("{"):
            return key
        uri = key[1:].split("}", 1)[0]
        document = {v: k for k, v in element.nsmap.items() if k}
        return self.of(key, document.get(uri))


def element_value(element: Any, names: Names) -> Any:
    """A leaf's text; else a dict of `@attribute`s, child names (repeated ones as a list)
    and `#text`. Depth is bounded by the reader, so recursion is too."""
    text = (element.text or "").strip()
    if not len(element) and not element.attrib:
        return text
    out: dict[str, Any] = {f"@{names.attribute(k, element)}": v for k, v in element.attrib.items()}
    repeated = set()
    for child in element:
        key, value = names.of(child.tag, child.prefix), element_value(child, names)
        if key in repeated:
            out[key].append(value)
        elif key in out:
            out[key] = [out[key], value]
            repeated.add(key)
        else:
            out[key] = value
    if text:
        out["#text"] = text
    return out


def prolog_check(head: bytes) -> None:
    """Refuse a document type declaration before the parser sees it (an ASCII-compatible
    prolog; another encoding's is refused at the root element by the parser's record)."""
    end = _PROLOG.match(head).end()
    if head[end : end + 9] == b"<!DOCTYPE":
        raise FeedError(DOCTYPE_REFUSED)


DOCTYPE_REFUSED = (
    "the XML declares a document type (<!DOCTYPE>): refused, since its entities could read "
    "local files or expand without bound; a product feed needs none"
)


def syntax_message(exc: Exception) -> str:
    """The parser's error in our words."""
    text = str(exc)
    if "depth" in text.lower():
        return f"the XML nests deeper than {MAX_DEPTH} elements: refused"
    if "amplification" in text or "entity" in text.lower():
        return f"the XML uses entities, which are refused: {text}"
    if "Text node too long" in text or "Resource limit" in text or "huge" in text.lower():
        return (
            f"a text or attribute value is longer than the XML reader's bound "
            f"({PARSER_TEXT_BOUND} bytes): refused"
        )
    return f"malformed XML: {text}"


class _Reader:
    """The parser's events made into rows: one per item element, built when it ends."""

    def __init__(self, items: ItemPaths, names: Names, document: Document) -> None:
        self.items, self.names, self.document = items, names, document
        self.stack: list[str] = []
        self.item: Any = None
        self.item_start = 0
        self.failure = ""
        self.over = 0
        self.started = False
        self.bound, self.text_bound = item_bound(), app_settings.MAX_TEXT_LENGTH

    def events(self, events, fed: int) -> Iterator[Row]:
        for event, element in events:
            if event == "start":
                self._start(element, fed)
            else:
                yield from self._end(element)
        if self.item is not None and not self.over and fed - self.item_start > self.bound:
            self.over = fed - self.item_start
            for child in list(self.item)[:-1]:  # the last may be open: kept until it ends
                self.item.remove(child)
        if self.over:
            self.over = max(self.over, fed - self.item_start)

    def _start(self, element: Any, fed: int) -> None:
        if not self.started:
            self.started = True
            if element.getroottree().docinfo.doctype:
                raise FeedError(DOCTYPE_REFUSED)
        self.stack.append(self.names.of(element.tag, element.prefix))
        if len(self.stack) > MAX_DEPTH:
            raise FeedError(f"the XML nests deeper than {MAX_DEPTH} elements: refused")
        if self.item is None and self.items.matches(self.stack):
            self.item, self.item_start, self.failure, self.over = element, fed, "", 0

    def _end(self, element: Any) -> Iterator[Row]:
        name = self.stack.pop()
        if element is self.item:
            yield Row(element.sourceline or 0, self._made(element, name))
            self.item = None
            _free(element)
        elif self.item is not None:
            if not self.failure and len(element.text or "") > self.text_bound:
                self.failure = (
                    f"<{name}> is {len(element.text)} characters, longer than "
                    f"PRODUCTSYNC['MAX_TEXT_LENGTH'] ({self.text_bound})"
                )
            if self.over or self.failure:
                _free(element)
        else:
            if not len(element) and len(self.document.values) < DOCUMENT_VALUES:
                path = "/" + "/".join([*self.stack, name])
                self.document.values.setdefault(path, (element.text or "").strip())
            _free(element)

    def _made(self, element: Any, name: str) -> dict | Unparsed:
        line = element.sourceline or 0
        if self.over:
            message = too_long("the item", self.over, self.bound)
            return Unparsed(f"<{name}>...", f"line {line}: {message}")
        if self.failure:
            return Unparsed(f"<{name}>...", f"line {line}: {self.failure}")
        value = element_value(element, self.names)
        return value if isinstance(value, dict) else {"#text": value}


def _free(element: Any) -> None:
    """Drop an element that was read, and the siblings before it, from the tree."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def xml_rows(
    stream: io.BufferedReader,
    items: ItemPaths,
    namespaces: dict[str, str],
    document: Document,
) -> Iterator[Row]:
    """Each item element of the stream as a Row (its line, its dict), or an Unparsed for an
    item over the bounds; a FeedError for a document that is not well-formed or hostile."""
    parser = etree.XMLPullParser(events=("start", "end"), **HARDENED)
    reader = _Reader(items, Names(namespaces), document)
    fed = read = 0
    try:
        while chunk := stream.read(CHUNK):
            if not fed:
                prolog_check(chunk[: PREVIEW * 64])
            parser.feed(chunk)
            fed += len(chunk)
            for row in reader.events(parser.read_events(), fed):
                read += 1
                yield row
        parser.close()
        yield from reader.events(parser.read_events(), fed)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"after item {read}: {syntax_message(exc)}") from None
    if not reader.started:
        raise FeedError("the XML has no root element")


def namespace_declared(head: bytes, uri: str) -> bool:
    """Whether the first bytes of a document name a namespace (a preset told by it)."""
    return uri.encode() in head or uri.encode("utf-16-le") in head


def xml_value(item: dict, path: str) -> Any:
    """The text at an element path (`a/b`, `@name`) of an item; through a repeated element,
    the list of every match."""
    return _walk(item, path.split("/"))


def _walk(value: Any, parts: list[str]) -> Any:
    for i, part in enumerate(parts):
        if isinstance(value, list):
            found = (_walk(element, parts[i:]) for element in value)
            return [v for f in found for v in (f if isinstance(f, list) else [f]) if v]
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return _text(value)


def _text(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("#text", "")
    if isinstance(value, list):
        return [v for v in map(_text, value) if v]
    return value


def item_paths_parse(paths: Any, where: str) -> ItemPaths:
    """item_path: the element path of an item, or a list of alternatives."""
    paths = [paths] if isinstance(paths, str) else paths
    if (
        not isinstance(paths, list)
        or not paths
        or not all(isinstance(p, str) and p.strip("/") for p in paths)
    ):
        raise SourceError(f"{where}: item_path is an element path (rss/channel/item) or a list")
    return ItemPaths(tuple(paths))


def namespaces_parse(namespaces: Any, where: str) -> dict:
    if not isinstance(namespaces, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in namespaces.items()
    ):
        raise SourceError(f"{where}: namespaces is a table of prefixes to namespace URIs")
    return dict(namespaces)
