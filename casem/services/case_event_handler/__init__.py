"""case-event-handler: 17 flavors, each its own consumer group on the tenant domain-events topics."""
