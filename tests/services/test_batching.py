"""batching.batched: chunking, and the last short chunk before an error."""

import pytest

from productsync.batching import batched


def test_chunks_of_the_given_size_with_a_short_last_one():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_an_error_yields_what_was_read_then_raises():
    def items():
        yield from (1, 2, 3, 4)
        raise ValueError("broken")

    chunks = batched(items(), 3)
    assert next(chunks) == [1, 2, 3]
    assert next(chunks) == [4]
    with pytest.raises(ValueError, match="broken"):
        next(chunks)


def test_size_below_one_is_refused():
    with pytest.raises(ValueError):
        list(batched([1], 0))
