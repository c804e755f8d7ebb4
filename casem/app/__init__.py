"""The application layer: the use cases every casem service shares, one folder per concept.

Services (casem/services/*) are thin transports and consumers over these modules; the modules
themselves speak the domain (casem/domain) and reach storage, search, the bus and workflows through
the adapters (casem/adapters). See docs/architecture.md.
"""
