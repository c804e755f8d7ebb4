"""Chat interactions: the use cases the chat bridges share (the gRPC ChatInteractionsService and the Slack and
Teams bridges of case-chat-interactions): workspace installations, chat user ↔ casem user mapping, excerpts,
case links to chat conversations, case actions on behalf of a chat user, and the bridges' durable inbox."""
