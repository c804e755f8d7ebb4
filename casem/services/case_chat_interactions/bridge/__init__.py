"""The Slack and Teams bridges of case-chat-interactions (HTTP): verify each request, record it in the durable
inbox, answer at once (Slack wants an answer within 3 s), and let the inbox worker apply it through the chat
use cases. See the package docstring one level up for why they share this deployable."""
