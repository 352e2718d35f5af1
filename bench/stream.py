"""The sync's feed path without the database: open, pre-count, stream, batch, validate and
fingerprint every item, as sync_products does, and write nothing. For the memory check of
feeds too large to sync in the time at hand.

python bench/stream.py FEED --batch-size 1000
"""

import argparse

from _django import setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("feed")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    setup()

    from productsync.batching import batched
    from productsync.feeds import feed_open
    from productsync.outcomes import BatchResult
    from productsync.services.batch import _batch_validate

    valid = 0
    with feed_open(args.feed) as feed:
        for number, chunk in enumerate(batched(feed, args.batch_size), start=1):
            result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
            valid += len(_batch_validate(chunk, result))
    print(f"{valid} valid items of {feed.total_items}")


if __name__ == "__main__":
    main()
