"""caseworker: Temporal workflows for file lifecycle, case retention and merges."""
