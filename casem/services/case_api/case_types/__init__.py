"""Case types: Datadog's CaseManagementTypeApi."""
