"""Product images: fetched after their batch committed, stored once per content, kept as
Oscar ProductImages. Nothing here runs inside a batch transaction."""

import functools
import hashlib
import io
import logging
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit

from django.core.files.base import ContentFile
from oscar.core.loading import get_model

from productsync.conf import app_settings

# requests and Pillow are imported when a run has an image to fetch: most runs have none, and
# every sync_products process would pay for importing them.

logger = logging.getLogger(__name__)

ProductImage = get_model("catalogue", "ProductImage")

# ProductImage.code of the images productsync manages: the product and a digest of the feed's
# reference, so an image whose reference is unchanged is not fetched again.
CODE_PREFIX = "productsync:"
# Content-addressed storage names: identical bytes are stored once, whichever product uses them.
FOLDER = "images/products/productsync"
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}


class ImageError(Exception):
    """One image could not be fetched or is not an image; kind names the reason without the
    details, so that a run's failures are counted by kind."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind or message


class ImageWarning(NamedTuple):
    """An image not fetched: the note the run keeps and the kind it is counted under."""

    text: str
    kind: str


class ImageUnavailable(ImageError):
    """An image URL gave no image: refused, unreachable, an error status, too slow. The run
    stores only that (the reason goes to the log): what a feed may name is no map of the
    network around the shop."""


UNAVAILABLE = "not available at that address"


def image_code(product_id: int, ref: str) -> str:
    return f"{CODE_PREFIX}{product_id}:{hashlib.blake2b(ref.encode(), digest_size=12).hexdigest()}"


class ImageSync:
    """Fetches and stores the images of one run's products through one pooled HTTP session."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.storage = ProductImage._meta.get_field("original").storage

    @functools.cached_property
    def session(self):
        from productsync.http import GuardedSession, image_guard

        return GuardedSession(image_guard(self.source))

    def close(self) -> None:
        if "session" in self.__dict__:
            self.session.close()

    def __enter__(self) -> "ImageSync":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sync(self, wanted: list[tuple[int, str, tuple[str, ...]]], beat=None) -> list[ImageWarning]:
        """Make each product's productsync images match its ordered references (the first is
        the primary image). Return one warning per image that could not be fetched; it is
        not recorded, so the next run fetches it again. Images added by staff are kept.
        beat() is called before each image is fetched (the run's heartbeat)."""
        if not wanted:
            return []
        rows = ProductImage.objects.filter(
            product_id__in=[product_id for product_id, _, _ in wanted],
            code__startswith=CODE_PREFIX,
        )
        existing = {image.code: image for image in rows}
        warnings, new, moved, keep = [], [], [], set()
        for product_id, upc, refs in wanted:
            for order, ref in enumerate(dict.fromkeys(refs)):
                code = image_code(product_id, ref)
                keep.add(code)
                image = existing.get(code)
                if image is not None:
                    if image.display_order != order:
                        image.display_order = order
                        moved.append(image)
                    continue
                if beat is not None:
                    beat()
                try:
                    name = self._store(self._fetch(ref))
                except Exception as exc:  # noqa: BLE001  (one image never ends the run)
                    reason = _reason(exc)
                    text = f"image {ref!r} of product {upc!r} not fetched ({reason}); "
                    warnings.append(ImageWarning(text + "the next run tries again", _kind(exc)))
                    continue
                new.append(
                    ProductImage(
                        product_id=product_id, code=code, original=name, display_order=order
                    )
                )
        ProductImage.objects.bulk_create(new)
        ProductImage.objects.bulk_update(moved, ["display_order"])
        self._remove([image for code, image in existing.items() if code not in keep])
        return warnings

    def _remove(self, images: list) -> None:
        """Delete image rows that left the feed, and their files once no row uses them.
        Oscar's post_delete receiver would delete the file even when another product shares
        it (content-addressed), so the rows go without signals."""
        if not images:
            return
        stale = ProductImage.objects.filter(pk__in=[image.pk for image in images])
        stale._raw_delete(stale.db)
        names = {image.original.name for image in images}
        used = set(
            ProductImage.objects.filter(original__in=names).values_list("original", flat=True)
        )
        for name in names - used:
            self.storage.delete(name)

    def _store(self, data: bytes) -> str:
        from PIL import Image, UnidentifiedImageError

        limit = app_settings.IMAGE_MAX_PIXELS
        try:
            with Image.open(io.BytesIO(data), formats=list(EXTENSIONS)) as picture:
                kind = picture.format
                width, height = picture.size
                if width * height > limit:
                    raise ImageError(
                        f"{width}x{height} pixels, more than PRODUCTSYNC['IMAGE_MAX_PIXELS'] "
                        f"({limit})",
                        "too many pixels",
                    )
                picture.verify()  # checks the structure; decodes no pixels
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"too many pixels: {exc}", "too many pixels") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"not an image: {exc}", "not an image") from None
        digest = hashlib.sha256(data).hexdigest()
        name = f"{FOLDER}/{digest[:2]}/{digest}{EXTENSIONS[kind]}"
        try:
            if not self.storage.exists(name):
                name = self.storage.save(name, ContentFile(data))
        except OSError as exc:
            raise ImageError(f"cannot store it: {exc}", "cannot be stored") from None
        return name

    def _fetch(self, ref: str) -> bytes:
        """The bytes of an http(s) URL, or of a path relative to the feed (its folder for a
        local feed, its URL for a remote one)."""
        limit = app_settings.IMAGE_MAX_BYTES
        scheme = urlsplit(ref).scheme.lower()
        base_scheme = urlsplit(self.source).scheme.lower()
        if scheme in ("http", "https") or (not scheme and base_scheme in ("http", "https")):
            return self._download(ref if scheme else urljoin(self.source, ref), limit)
        if scheme:
            raise ImageError(
                f"unsupported scheme {scheme!r}: use http(s) or a relative path",
                "unsupported scheme",
            )
        folder = Path(self.source).resolve().parent
        path = (folder / ref).resolve()
        if not path.is_relative_to(folder):
            raise ImageError("a relative image path must stay inside the feed's folder")
        try:
            if path.stat().st_size > limit:
                raise ImageError(
                    f"larger than PRODUCTSYNC['IMAGE_MAX_BYTES'] ({limit})", "too large"
                )
            return path.read_bytes()
        except OSError as exc:
            raise ImageError(exc.strerror or str(exc), "file not readable") from None

    def _download(self, url: str, limit: int) -> bytes:
        from productsync.http import FetchError

        try:
            response = self.session.get(url)
        except FetchError as exc:
            raise ImageUnavailable(str(exc)) from None
        try:
            if response.status_code != 200:
                raise ImageUnavailable(f"HTTP {response.status_code}")
            data = bytearray()
            while chunk := response.read(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise ImageError(
                        f"larger than PRODUCTSYNC['IMAGE_MAX_BYTES'] ({limit})", "too large"
                    )
            return bytes(data)
        except FetchError as exc:
            raise ImageUnavailable(str(exc)) from None
        finally:
            response.close()


def _kind(exc: Exception) -> str:
    """The kind an image's failure is counted under on the run page."""
    if isinstance(exc, ImageUnavailable):
        return UNAVAILABLE
    return exc.kind if isinstance(exc, ImageError) else "cannot be read"


def _reason(exc: Exception) -> str:
    """What the run stores of why an image was not taken; the details of an unavailable one
    (and of an unexpected error) go to the log only."""
    if isinstance(exc, ImageUnavailable):
        logger.warning("image not fetched: %s", exc)
        return UNAVAILABLE
    if isinstance(exc, ImageError):
        return str(exc)
    logger.warning("image not taken: %r", exc, exc_info=exc)
    return f"cannot be read: {type(exc).__name__}"
