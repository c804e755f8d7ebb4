"""Project automation rules (Datadog's CaseAutomationRule API) and casem's SLA, reminder and duplicate settings."""
