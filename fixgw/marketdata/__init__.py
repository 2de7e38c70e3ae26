"""L2 books from snapshots and incremental refreshes, and their streams."""
