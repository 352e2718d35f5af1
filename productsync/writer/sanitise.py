"""HTML from feeds made safe for the storefront (Oscar prints descriptions and rich-text
attributes unescaped) with nh3: the formatting tags of a product description kept; scripts,
style sheets, frames, forms, event handlers and URLs other than http(s), mailto and tel
dropped."""

from urllib.parse import urlsplit

import nh3

from productsync.conf import app_settings

# Links may point at these; images only at http(s) or a URL relative to the shop.
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
IMAGE_SCHEMES = frozenset({"http", "https"})
# nh3's formatting attributes, and style on any tag with typographic properties only (no
# positioning over the page, no url()).
ATTRIBUTES = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()} | {"*": {"style"}}
STYLE_PROPERTIES = frozenset(
    {
        *(
            f"{box}{side}"
            for box in ("margin", "padding")
            for side in ("", "-top", "-right", "-bottom", "-left")
        ),
        "color",
        "background-color",
        "font",
        "font-family",
        "font-size",
        "font-stretch",
        "font-style",
        "font-weight",
        "line-height",
        "letter-spacing",
        "text-align",
        "text-decoration",
        "text-indent",
        "text-transform",
        "vertical-align",
        "white-space",
        "min-height",
        "border",
        "border-collapse",
        "width",
        "height",
    }
)
# What decides the cleaned text; part of each product's fingerprint, so that a product written
# before sanitising (or under other rules) is written again, cleaned, on the next run.
POLICY = f"nh3 {nh3.__version__}, policy 1"


def _attribute(tag: str, name: str, value: str) -> str | None:
    """An img src other than http(s) or relative (data:, a network-path //...) is dropped."""
    if tag == "img" and name == "src":
        scheme = urlsplit(value).scheme.lower()
        if scheme not in IMAGE_SCHEMES and (scheme or value.lstrip().startswith("//")):
            return None
    return value


def html_sanitise(text: str) -> str:
    """The HTML text with only safe formatting left."""
    if "<" not in text:
        return text  # no tag, nothing to clean (nh3 would only re-escape > and quotes)
    return nh3.clean(
        text,
        attributes=ATTRIBUTES,
        attribute_filter=_attribute,
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(STYLE_PROPERTIES),
    )


def html_policy() -> str:
    """The sanitising in force: POLICY, or '' when SANITISE_HTML is off."""
    return POLICY if app_settings.SANITISE_HTML else ""


def html_clean(text: str) -> str:
    """The text as it is stored: sanitised unless SANITISE_HTML is off."""
    return html_sanitise(text) if app_settings.SANITISE_HTML else text
