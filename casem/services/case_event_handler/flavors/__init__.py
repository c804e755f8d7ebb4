"""One module per case-event-handler flavor; importing this package registers them all."""

from casem.services.case_event_handler.flavors import (  # noqa: F401
    analytics,
    audit_trail,
    automation_rules,
    due_date_reminders,
    duplicate_detection,
    email_delivery,
    jira_sync,
    msteams_delivery,
    notification_rules,
    paging,
    retention_scheduling,
    search_indexing,
    servicenow_sync,
    sla_tracking,
    slack_delivery,
    watcher_notifications,
    webhook_delivery,
)
