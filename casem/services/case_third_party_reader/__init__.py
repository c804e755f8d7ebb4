"""case-third-party-reader: applies the Jira and ServiceNow connector feeds to the linked cases (one flavor each)."""
