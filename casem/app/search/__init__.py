"""Engine-backed case search: documents built from the database, and the search/count/aggregate
functions the HTTP API calls when a search engine is configured."""
