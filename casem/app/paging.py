"""Page bounds shared by every list: a page number past these would overflow OFFSET (64-bit on every
engine, and SQLite refuses Python integers beyond it) long before it could reach data."""

MAX_PAGE_NUMBER = 10_000_000
