"""case-event-relay: polls each tenant's domain_events outbox and publishes it to the tenant's topic."""
