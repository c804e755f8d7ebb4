"""Use cases of the web console: people's accounts and passwords, sessions, and what its pages read."""
