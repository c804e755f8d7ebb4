"""Jira and ServiceNow: accounts and instances, case links, project sync rules, and the two-way sync."""
