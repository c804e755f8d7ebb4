"""The Bot Connector client against the loopback Bot Framework: the app token by client credentials, kept until
shortly before it expires; activities posted with it into a conversation or a channel thread; 429 and 5xx are
transient with their Retry-After, other failures permanent; no error carries the receiver's body or the password."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from casem.adapters.chat.bot_connector import (
    DEFAULT_SCOPE,
    DEFAULT_TOKEN_URL,
    BotConnector,
    BotConnectorError,
    BotCredentials,
    thread_conversation_id,
)
from casem.adapters.http import AllowList, guarded_client
from tests.support.bot_connector import SCOPE, BotFramework, running_bot_framework

APP_ID = "6b2a8e0c-4a43-4a3f-9a0e-0b5d2c7f9d11"
PASSWORD = "the-bot-password-1234"
MESSAGE = {"type": "message", "text": "hello"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bot() -> Iterator[BotFramework]:
    with running_bot_framework(APP_ID, PASSWORD, expires_in=3599) as api:
        yield api


def connector(bot: BotFramework, clock: Clock, password: str = PASSWORD) -> BotConnector:
    client = guarded_client(AllowList.parse(["127.0.0.1/32"]), timeout=5.0)
    return BotConnector(BotCredentials(APP_ID, password, bot.token_url), client, clock=clock)


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(bot: BotFramework, clock: Clock) -> AsyncIterator[BotConnector]:
    found = connector(bot, clock)
    yield found
    await found.close()


def test_the_documented_defaults_and_the_thread_conversation_id() -> None:
    assert DEFAULT_TOKEN_URL == "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
    assert DEFAULT_SCOPE == SCOPE == "https://api.botframework.com/.default"
    assert thread_conversation_id("19:abc@thread.tacv2", "1700") == "19:abc@thread.tacv2;messageid=1700"
    assert thread_conversation_id("19:abc@thread.tacv2;messageid=1600", "1700") == "19:abc@thread.tacv2;messageid=1700"
    assert thread_conversation_id("a:1Xk9", "") == "a:1Xk9"
    creds = BotCredentials.from_env({"CASEM_TEAMS_APP_ID": APP_ID, "CASEM_TEAMS_APP_PASSWORD": PASSWORD})
    assert creds is not None and creds.token_url == DEFAULT_TOKEN_URL and PASSWORD not in repr(creds)
    assert BotCredentials.from_env({"CASEM_TEAMS_APP_ID": APP_ID}) is None


async def test_posts_into_a_thread_with_one_token_until_it_nears_expiry(
    api: BotConnector, bot: BotFramework, clock: Clock
) -> None:
    first = await api.send_to_conversation(bot.service_url, "19:abc@thread.tacv2;messageid=1700", MESSAGE)
    second = await api.send_to_conversation(bot.service_url, "a:1Xk9-personal", {**MESSAGE, "text": "again"})
    assert first and second and first != second
    assert [(p.conversation_id, p.activity["text"], p.id) for p in bot.posted] == [
        ("19:abc@thread.tacv2;messageid=1700", "hello", first),
        ("a:1Xk9-personal", "again", second),
    ]
    assert len(bot.tokens_issued) == 1
    clock.now += 3599 - 301  # still more than five minutes left
    await api.send_to_conversation(bot.service_url, "a:1Xk9-personal", MESSAGE)
    assert len(bot.tokens_issued) == 1
    clock.now += 2  # within five minutes of expiry: renewed
    await api.send_to_conversation(bot.service_url, "a:1Xk9-personal", MESSAGE)
    assert len(bot.tokens_issued) == 2


async def test_a_rate_limit_is_transient_with_its_retry_after(api: BotConnector, bot: BotFramework) -> None:
    bot.throttle(times=1, retry_after=7)
    with pytest.raises(BotConnectorError) as raised:
        await api.send_to_conversation(bot.service_url, "a:1", MESSAGE)
    error = raised.value
    assert (error.status, error.transient, error.retry_after) == (429, True, 7.0)
    assert "Throttled" not in str(error) and "slow down" not in str(error)  # the receiver's body stays out
    assert await api.send_to_conversation(bot.service_url, "a:1", MESSAGE)  # the next try goes through
    assert bot.refused == [429] and len(bot.posted) == 1


async def test_refused_credentials_and_unknown_endpoints_are_permanent(bot: BotFramework, clock: Clock) -> None:
    wrong = connector(bot, clock, password="not-the-password")
    try:
        with pytest.raises(BotConnectorError) as raised:
            await wrong.send_to_conversation(bot.service_url, "a:1", MESSAGE)
    finally:
        await wrong.close()
    error = raised.value
    assert (error.status, error.transient) == (401, False)
    assert str(error).startswith("the Bot Framework token endpoint: HTTP 401")
    assert "AADSTS" not in str(error) and "not-the-password" not in str(error)
    right = connector(bot, clock)
    try:
        with pytest.raises(BotConnectorError) as raised:
            await right.send_to_conversation(bot.base + "/elsewhere/", "a:1", MESSAGE)
    finally:
        await right.close()
    assert (raised.value.status, raised.value.transient) == (404, False)
    assert bot.posted == []


async def test_a_token_the_connector_no_longer_accepts_is_replaced_once(api: BotConnector, bot: BotFramework) -> None:
    await api.send_to_conversation(bot.service_url, "a:1", MESSAGE)
    bot.tokens_issued.clear()  # the Bot Framework revoked it
    assert await api.send_to_conversation(bot.service_url, "a:1", MESSAGE)
    assert bot.refused == [401] and len(bot.tokens_issued) == 1 and len(bot.posted) == 2


async def test_the_guard_refuses_a_service_url_on_the_internal_network(bot: BotFramework, clock: Clock) -> None:
    # Without the operator allowing the loopback network, the guarded client does not connect there.
    client = guarded_client(AllowList.parse([]), timeout=5.0)
    api = BotConnector(BotCredentials(APP_ID, PASSWORD, bot.token_url), client, clock=clock)
    try:
        with pytest.raises(BotConnectorError) as raised:
            await api.send_to_conversation(bot.service_url, "a:1", MESSAGE)
    finally:
        await api.close()
    assert raised.value.transient is False and raised.value.status is None
    assert bot.tokens_issued == [] and bot.posted == []
