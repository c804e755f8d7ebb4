"""Sending notifications to people: email over SMTP, SMS and voice calls through a Twilio-compatible API, and push
notifications as signed webhooks. Every HTTP call goes through the guarded client (casem/adapters/http)."""
