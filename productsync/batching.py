"""Pure chunking of any iterable into lists."""

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def batched(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to size items. If the iterable raises, the items read before the error
    are yielded first as a last short list, then the error is raised."""
    if size < 1:
        raise ValueError("size must be at least 1")
    chunk: list[T] = []
    try:
        for element in iterable:
            chunk.append(element)
            if len(chunk) == size:
                yield chunk
                chunk = []
    except Exception:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk
