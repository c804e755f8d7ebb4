"""A user's On-Call notification channels and rules, through the official client."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.create_email_notification_channel_config import CreateEmailNotificationChannelConfig
from datadog_api_client.v2.model.create_notification_channel_attributes import CreateNotificationChannelAttributes
from datadog_api_client.v2.model.create_notification_channel_data import CreateNotificationChannelData
from datadog_api_client.v2.model.create_on_call_notification_rule_request import CreateOnCallNotificationRuleRequest
from datadog_api_client.v2.model.create_on_call_notification_rule_request_data import (
    CreateOnCallNotificationRuleRequestData,
)
from datadog_api_client.v2.model.create_phone_notification_channel_config import CreatePhoneNotificationChannelConfig
from datadog_api_client.v2.model.create_user_notification_channel_request import (
    CreateUserNotificationChannelRequest,
)
from datadog_api_client.v2.model.notification_channel_email_config_type import NotificationChannelEmailConfigType
from datadog_api_client.v2.model.notification_channel_email_format_type import NotificationChannelEmailFormatType
from datadog_api_client.v2.model.notification_channel_phone_config_type import NotificationChannelPhoneConfigType
from datadog_api_client.v2.model.notification_channel_type import NotificationChannelType
from datadog_api_client.v2.model.on_call_notification_rule_category import OnCallNotificationRuleCategory
from datadog_api_client.v2.model.on_call_notification_rule_channel_relationship import (
    OnCallNotificationRuleChannelRelationship,
)
from datadog_api_client.v2.model.on_call_notification_rule_channel_relationship_data import (
    OnCallNotificationRuleChannelRelationshipData,
)
from datadog_api_client.v2.model.on_call_notification_rule_relationships import OnCallNotificationRuleRelationships
from datadog_api_client.v2.model.on_call_notification_rule_request_attributes import (
    OnCallNotificationRuleRequestAttributes,
)
from datadog_api_client.v2.model.on_call_notification_rule_type import OnCallNotificationRuleType
from datadog_api_client.v2.model.on_call_phone_notification_rule_method import OnCallPhoneNotificationRuleMethod
from datadog_api_client.v2.model.on_call_phone_notification_rule_settings import OnCallPhoneNotificationRuleSettings
from datadog_api_client.v2.model.update_on_call_notification_rule_request import UpdateOnCallNotificationRuleRequest
from datadog_api_client.v2.model.update_on_call_notification_rule_request_attributes import (
    UpdateOnCallNotificationRuleRequestAttributes,
)
from datadog_api_client.v2.model.update_on_call_notification_rule_request_data import (
    UpdateOnCallNotificationRuleRequestData,
)

from tests.api.helpers import add_user
from tests.api.oncall_helpers import event_types_of, on_call, oncall_outbox
from tests.support.api_client import OrgClient


def email_channel(address: str) -> CreateUserNotificationChannelRequest:
    return CreateUserNotificationChannelRequest(
        data=CreateNotificationChannelData(
            type=NotificationChannelType.NOTIFICATION_CHANNELS,
            attributes=CreateNotificationChannelAttributes(
                config=CreateEmailNotificationChannelConfig(
                    address=address,
                    formats=[NotificationChannelEmailFormatType.TEXT],
                    type=NotificationChannelEmailConfigType.EMAIL,
                )
            ),
        )
    )


def phone_channel(number: str) -> CreateUserNotificationChannelRequest:
    return CreateUserNotificationChannelRequest(
        data=CreateNotificationChannelData(
            type=NotificationChannelType.NOTIFICATION_CHANNELS,
            attributes=CreateNotificationChannelAttributes(
                config=CreatePhoneNotificationChannelConfig(
                    number=number, type=NotificationChannelPhoneConfigType.PHONE
                )
            ),
        )
    )


def rule_request(channel_id: str, category: str, delay: int, method: str | None = None):  # type: ignore[no-untyped-def]
    extra = {}
    if method is not None:
        extra["channel_settings"] = OnCallPhoneNotificationRuleSettings(
            method=OnCallPhoneNotificationRuleMethod(method), type=NotificationChannelPhoneConfigType.PHONE
        )
    return CreateOnCallNotificationRuleRequest(
        data=CreateOnCallNotificationRuleRequestData(
            type=OnCallNotificationRuleType.NOTIFICATION_RULES,
            attributes=OnCallNotificationRuleRequestAttributes(
                category=OnCallNotificationRuleCategory(category), delay_minutes=delay, **extra
            ),
            relationships=OnCallNotificationRuleRelationships(
                channel=OnCallNotificationRuleChannelRelationship(
                    data=OnCallNotificationRuleChannelRelationshipData(
                        id=channel_id, type=NotificationChannelType.NOTIFICATION_CHANNELS
                    )
                )
            ),
        )
    )


def test_channels_and_rules_of_a_user(org: OrgClient) -> None:
    bob = add_user(org, "bob@example.com", name="Bob")
    api = on_call(org)
    email = api.create_user_notification_channel(user_id=bob, body=email_channel("Bob@Example.com")).data
    config = email.attributes.config.get_oneof_instance()
    assert (config.address, [str(f) for f in config.formats]) == ("bob@example.com", ["text"])
    phone = api.create_user_notification_channel(user_id=bob, body=phone_channel("+44 20 7946 0958")).data
    phone_config = phone.attributes.config.get_oneof_instance()
    assert (phone_config.number, phone_config.region) == ("+442079460958", "GB")
    assert [c.id for c in api.list_user_notification_channels(user_id=bob).data] == [email.id, phone.id]
    assert api.get_user_notification_channel(user_id=bob, channel_id=phone.id).data.id == phone.id

    sms = api.create_user_notification_rule(user_id=bob, body=rule_request(phone.id, "high_urgency", 0, "sms")).data
    assert str(sms.attributes.channel_settings.get_oneof_instance().method) == "sms"
    mail = api.create_user_notification_rule(user_id=bob, body=rule_request(email.id, "low_urgency", 5)).data
    listed = api.list_user_notification_rules(user_id=bob, include="channel")
    assert [r.id for r in listed.data] == [sms.id, mail.id]
    assert sorted(i.get_oneof_instance().id for i in listed.included) == sorted([phone.id, email.id])
    read = api.get_user_notification_rule(user_id=bob, rule_id=sms.id, include="channel")
    assert read.included[0].get_oneof_instance().id == phone.id

    update = UpdateOnCallNotificationRuleRequest(
        data=UpdateOnCallNotificationRuleRequestData(
            id=sms.id,
            type=OnCallNotificationRuleType.NOTIFICATION_RULES,
            attributes=UpdateOnCallNotificationRuleRequestAttributes(
                category=OnCallNotificationRuleCategory.HIGH_URGENCY,
                delay_minutes=3,
                channel_settings=OnCallPhoneNotificationRuleSettings(
                    method=OnCallPhoneNotificationRuleMethod.VOICE, type=NotificationChannelPhoneConfigType.PHONE
                ),
            ),
        )
    )
    updated = api.update_user_notification_rule(user_id=bob, rule_id=sms.id, body=update).data
    assert updated.attributes.delay_minutes == 3
    assert str(updated.attributes.channel_settings.get_oneof_instance().method) == "voice"

    api.delete_user_notification_rule(user_id=bob, rule_id=mail.id)
    with pytest.raises(NotFoundException):
        api.get_user_notification_rule(user_id=bob, rule_id=mail.id)
    api.delete_user_notification_channel(user_id=bob, channel_id=phone.id)  # its rules go with it
    assert [r.id for r in api.list_user_notification_rules(user_id=bob).data] == []
    types = event_types_of(oncall_outbox(org))
    assert types.count("notification_channel.created") == 2 and "notification_rule.updated" in types


@pytest.mark.parametrize(
    ("config", "pointer"),
    [
        ({"type": "phone", "number": "555-1234"}, "/data/attributes/config/number"),
        ({"type": "email", "address": "not-an-address", "formats": ["html"]}, "/data/attributes/config/address"),
        ({"type": "email", "address": "a@b.example", "formats": ["pdf"]}, "/data/attributes/config/formats/0"),
        ({"type": "pager"}, "/data/attributes/config/type"),
        ({"type": "push", "application_name": "casem", "device_name": "phone", "url": "http://127.0.0.1:9/x"},
         "/data/attributes/config/url"),
    ],
)  # fmt: skip
def test_bad_channels_are_refused_with_the_field(org: OrgClient, config: dict, pointer: str) -> None:
    before = oncall_outbox(org)
    response = org.http.post(
        f"/api/v2/on-call/users/{org.user_id}/notification-channels",
        json={"data": {"type": "notification_channels", "attributes": {"config": config}}},
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer
    assert oncall_outbox(org) == before


def test_a_push_channel_is_a_signed_webhook_whose_secret_is_shown_once(
    org: OrgClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEM_SECRET_KEYS", Fernet.generate_key().decode())  # the secret is sealed with it
    config = {"type": "push", "application_name": "casem", "device_name": "pixel", "url": "https://push.example.com/h"}
    response = org.http.post(
        f"/api/v2/on-call/users/{org.user_id}/notification-channels",
        json={"data": {"type": "notification_channels", "attributes": {"config": config}}},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert len(body["meta"]["signing_secret"]) == 64
    shown = on_call(org).get_user_notification_channel(user_id=org.user_id, channel_id=body["data"]["id"])
    assert shown.data.attributes.config.get_oneof_instance().device_name == "pixel"
    assert "push.example.com" not in str(shown) and body["meta"]["signing_secret"] not in str(shown)


def test_rules_name_a_channel_of_the_same_user(org: OrgClient) -> None:
    bob = add_user(org, "bob@example.com")
    api = on_call(org)
    theirs = api.create_user_notification_channel(user_id=bob, body=phone_channel("+14155550100")).data
    with pytest.raises(ApiException) as missing:
        api.create_user_notification_rule(user_id=org.user_id, body=rule_request(theirs.id, "high_urgency", 0))
    assert missing.value.status == 404
    assert missing.value.body["errors"][0]["source"]["pointer"] == "/data/relationships/channel/data/id"
    mine = api.create_user_notification_channel(user_id=org.user_id, body=email_channel("me@example.com")).data
    response = org.http.post(
        f"/api/v2/on-call/users/{org.user_id}/notification-rules",
        json={
            "data": {
                "type": "notification_rules",
                "attributes": {"category": "high_urgency", "channel_settings": {"type": "phone", "method": "sms"}},
                "relationships": {"channel": {"data": {"id": mine.id, "type": "notification_channels"}}},
            }
        },
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/channel_settings"
    assert org.http.get(f"/api/v2/on-call/users/{uuid.uuid4()}/notification-channels").status_code == 404
