"""case-chat-interactions: chat conversations into case timelines, case actions from chat.

One deployable, two edges over the same use cases (casem/app/chat):
- the gRPC service `casem.v1.ChatInteractionsService` (servicer.py, server.py), for chat bridges in the
  seed's Hermes role;
- the Slack and Teams bridges (HTTP: Slack's Events API, interactivity and slash commands; Bot Framework
  activities from Teams), in bridge/.

Why the bridges live in this deployable rather than their own: they are this service's only producers of
chat traffic, they need the same state (installed workspaces and their sealed bot tokens, chat user
mappings, the durable inbox that makes Slack's retries harmless) and they must answer Slack within 3 s, so a
network hop to a separate gRPC service on every request would only add latency and a second thing to
deploy. They call the same application use cases the gRPC servicer calls, in process; a bridge deployed
elsewhere calls the gRPC service instead. `casem run case-chat-interactions` serves gRPC on the gRPC port,
the bridges on the HTTP port and /metrics on the ops port.
"""
