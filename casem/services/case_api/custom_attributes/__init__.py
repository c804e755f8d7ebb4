"""Custom attribute configurations per case type: Datadog's CaseManagementAttributeApi."""
