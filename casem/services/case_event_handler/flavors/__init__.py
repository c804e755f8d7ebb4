"""One module per case-event-handler flavor; importing this package registers them all."""

from casem.services.case_event_handler.flavors import analytics, audit_trail  # noqa: F401
