"""case-indexer: consumes `case-intake`, creates each case through case-api, and indexes it."""
