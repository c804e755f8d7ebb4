"""Clients of the remote systems casem syncs cases with: Jira Cloud (REST API v3) and ServiceNow (Table API).

Both send every request through the guarded outbound client (`casem.adapters.http`), honour the remote's
rate limits in one place (`ratelimit.py`) and report failures as `RemoteError`: the status, a reason casem
wrote, whether a retry can help, and the remote's own error messages from its documented error shape.
"""

from casem.adapters.integrations.errors import RemoteError
from casem.adapters.integrations.jira import JiraClient, adf_to_text, text_to_adf
from casem.adapters.integrations.ratelimit import RateLimitPolicy
from casem.adapters.integrations.servicenow import ServiceNowClient

__all__ = ["JiraClient", "RateLimitPolicy", "RemoteError", "ServiceNowClient", "adf_to_text", "text_to_adf"]
