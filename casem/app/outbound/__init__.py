"""Where casem's outbound calls may go: the operator's and each org's allow-lists, and the policy built from them."""
