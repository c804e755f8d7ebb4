"""case-connector-ingress: receives Jira webhooks and ServiceNow outbound REST messages, and polls both for what a
webhook missed; publishes each remote change to its connector feed (collaboration_integrations_jira /
collaboration_integrations_servicenow), keyed by the remote issue."""
