"""The Key Management API through datadog-api-client: API keys, application keys and the caller's own keys.

Every key created here is then used (or refused) on a real request: a key is only as good as what it opens.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx
import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ForbiddenException, NotFoundException
from datadog_api_client.v1.api.authentication_api import AuthenticationApi
from datadog_api_client.v2.api.key_management_api import KeyManagementApi
from datadog_api_client.v2.model.api_key_create_attributes import APIKeyCreateAttributes
from datadog_api_client.v2.model.api_key_create_data import APIKeyCreateData
from datadog_api_client.v2.model.api_key_create_request import APIKeyCreateRequest
from datadog_api_client.v2.model.api_key_update_attributes import APIKeyUpdateAttributes
from datadog_api_client.v2.model.api_key_update_data import APIKeyUpdateData
from datadog_api_client.v2.model.api_key_update_request import APIKeyUpdateRequest
from datadog_api_client.v2.model.api_keys_sort import APIKeysSort
from datadog_api_client.v2.model.api_keys_type import APIKeysType
from datadog_api_client.v2.model.application_key_create_attributes import ApplicationKeyCreateAttributes
from datadog_api_client.v2.model.application_key_create_data import ApplicationKeyCreateData
from datadog_api_client.v2.model.application_key_create_request import ApplicationKeyCreateRequest
from datadog_api_client.v2.model.application_key_update_attributes import ApplicationKeyUpdateAttributes
from datadog_api_client.v2.model.application_key_update_data import ApplicationKeyUpdateData
from datadog_api_client.v2.model.application_key_update_request import ApplicationKeyUpdateRequest
from datadog_api_client.v2.model.application_keys_sort import ApplicationKeysSort
from datadog_api_client.v2.model.application_keys_type import ApplicationKeysType
from datadog_api_client.v2.model.validate_api_key_status import ValidateAPIKeyStatus
from datadog_api_client.v2.model.validate_v2_type import ValidateV2Type

from casem.domain.identity import hash_key
from tests.api.helpers import add_user, as_user, assert_bad_request, outbox
from tests.support.api_client import OrgClient


def keys_api(org: OrgClient) -> KeyManagementApi:
    return KeyManagementApi(org.api_client)


def api_key_body(name: str, **attrs) -> APIKeyCreateRequest:
    return APIKeyCreateRequest(
        data=APIKeyCreateData(attributes=APIKeyCreateAttributes(name=name, **attrs), type=APIKeysType.API_KEYS)
    )


def app_key_body(name: str) -> ApplicationKeyCreateRequest:
    return ApplicationKeyCreateRequest(
        data=ApplicationKeyCreateData(
            attributes=ApplicationKeyCreateAttributes(name=name), type=ApplicationKeysType.APPLICATION_KEYS
        )
    )


def status_with(org: OrgClient, api_key: str, app_key: str) -> int:
    """The status of a harmless authenticated request made with these two keys."""
    with httpx.Client(base_url=org.server.url, timeout=30) as http:
        headers = {"DD-API-KEY": api_key, "DD-APPLICATION-KEY": app_key}
        return http.get("/api/v2/cases/projects", headers=headers).status_code


def test_api_key_lifecycle_and_the_key_opens_then_closes(org: OrgClient) -> None:
    api = keys_api(org)
    created = api.create_api_key(body=api_key_body("ingest", category="default", remote_config_read_enabled=True)).data
    secret = created.attributes.key
    assert re.fullmatch(r"[0-9a-f]{32}", secret)
    assert created.attributes.last4 == secret[-4:]
    assert created.attributes.name == "ingest" and created.attributes.remote_config_read_enabled is True
    assert created.relationships.created_by.data.id == org.user_id
    # The new API key authenticates beside the org's application key.
    assert status_with(org, secret, org.creds.app_key) == 200

    fetched = api.get_api_key(api_key_id=created.id).data
    assert fetched.attributes.name == "ingest" and fetched.attributes.category == "default"
    assert "key" not in fetched.attributes.to_dict()  # only its hash is stored: never shown again

    updated = api.update_api_key(
        api_key_id=created.id,
        body=APIKeyUpdateRequest(
            data=APIKeyUpdateData(
                attributes=APIKeyUpdateAttributes(name="ingest-eu", remote_config_read_enabled=False),
                id=created.id,
                type=APIKeysType.API_KEYS,
            )
        ),
    ).data
    assert updated.attributes.name == "ingest-eu" and updated.attributes.remote_config_read_enabled is False
    assert updated.attributes.category == "default"  # not sent, not changed
    assert updated.relationships.modified_by.data.id == org.user_id

    api.delete_api_key(api_key_id=created.id)
    assert status_with(org, secret, org.creds.app_key) == 403
    with pytest.raises(NotFoundException):
        api.get_api_key(api_key_id=created.id)
    with pytest.raises(NotFoundException):
        api.delete_api_key(api_key_id=created.id)
    assert created.id not in [k.id for k in api.list_api_keys(page_size=100).data]
    # The bootstrap key still works: only the revoked one closed.
    assert status_with(org, org.creds.api_key, org.creds.app_key) == 200


def test_api_key_listing_filters_sorts_and_pages_as_the_client_sends_them(org: OrgClient) -> None:
    api = keys_api(org)
    before = datetime.now(UTC)  # after the org's bootstrap key, before these three
    for name in ("beta", "alpha", "gamma"):
        api.create_api_key(body=api_key_body(f"svc-{name}", category="ci" if name != "gamma" else "prod"))
    listing = api.list_api_keys(sort=APIKeysSort.NAME_ASCENDING, filter="svc-", page_size=2)
    assert [k.attributes.name for k in listing.data] == ["svc-alpha", "svc-beta"]
    assert listing.meta.page.total_filtered_count == 3 and listing.meta.max_allowed >= 3
    second = api.list_api_keys(sort=APIKeysSort.NAME_ASCENDING, filter="svc-", page_size=2, page_number=1)
    assert [k.attributes.name for k in second.data] == ["svc-gamma"]
    newest = api.list_api_keys(sort=APIKeysSort.CREATED_AT_DESCENDING, page_size=1).data
    assert newest[0].attributes.name == "svc-gamma"
    by_category = api.list_api_keys(filter_category="ci", sort=APIKeysSort.NAME_DESCENDING).data
    assert [k.attributes.name for k in by_category] == ["svc-beta", "svc-alpha"]
    recent = api.list_api_keys(filter_created_at_start=before.isoformat(), page_size=100).data
    assert sorted(k.attributes.name for k in recent) == ["svc-alpha", "svc-beta", "svc-gamma"]  # not bootstrap
    assert api.list_api_keys(filter_created_at_end=before.isoformat()).meta.page.total_filtered_count == 1
    assert api.list_api_keys(filter_remote_config_read_enabled=True).data == []
    # include=created_by brings the creator's user document along.
    included = api.list_api_keys(filter="svc-alpha", include="created_by").included
    assert [u.id for u in included] == [org.user_id]


def test_application_keys_own_and_org_wide(org: OrgClient) -> None:
    api = keys_api(org)
    mine = api.create_current_user_application_key(body=app_key_body("laptop")).data
    secret = mine.attributes.key
    assert re.fullmatch(r"[0-9a-f]{40}", secret) and mine.attributes.last4 == secret[-4:]
    assert mine.relationships.owned_by.data.id == org.user_id
    assert status_with(org, org.creds.api_key, secret) == 200

    # A second user of the org with a key of their own.
    bob_id = add_user(org, "bob@example.com", name="Bob")
    bob = as_user(org, bob_id)
    bobs = keys_api(bob).create_current_user_application_key(body=app_key_body("bob-cli")).data

    own = api.list_current_user_application_keys(page_size=100).data
    assert mine.id in [k.id for k in own] and bobs.id not in [k.id for k in own]
    everyone = api.list_application_keys(page_size=100, sort=ApplicationKeysSort.NAME_ASCENDING)
    assert {mine.id, bobs.id} <= {k.id for k in everyone.data}
    assert everyone.meta.max_allowed_per_user >= 1
    by_owner = api.list_application_keys(filter_owned_by="bob@", include="owned_by")
    assert bobs.id in [k.id for k in by_owner.data] and mine.id not in [k.id for k in by_owner.data]
    assert {k.relationships.owned_by.data.id for k in by_owner.data} == {bob_id}
    assert [u.id for u in by_owner.included] == [bob_id]
    assert [k.id for k in api.list_application_keys(filter_owned_by=bob_id, filter="bob-cli").data] == [bobs.id]
    assert "key" not in json.dumps(org.http.get("/api/v2/application_keys").json()["data"][0]["attributes"])

    # Bob's key is not the caller's own: the current-user routes do not reach it; the org-wide ones do.
    with pytest.raises(NotFoundException):
        api.get_current_user_application_key(app_key_id=bobs.id)
    with pytest.raises(NotFoundException):
        api.delete_current_user_application_key(app_key_id=bobs.id)
    assert api.get_application_key(app_key_id=bobs.id).data.attributes.name == "bob-cli"

    renamed = api.update_current_user_application_key(
        app_key_id=mine.id,
        body=ApplicationKeyUpdateRequest(
            data=ApplicationKeyUpdateData(
                attributes=ApplicationKeyUpdateAttributes(name="laptop-2"),
                id=mine.id,
                type=ApplicationKeysType.APPLICATION_KEYS,
            )
        ),
    ).data
    assert renamed.attributes.name == "laptop-2"
    assert api.get_current_user_application_key(app_key_id=mine.id).data.attributes.name == "laptop-2"
    api.update_application_key(
        app_key_id=bobs.id,
        body=ApplicationKeyUpdateRequest(
            data=ApplicationKeyUpdateData(
                attributes=ApplicationKeyUpdateAttributes(name="bob-old"),
                id=bobs.id,
                type=ApplicationKeysType.APPLICATION_KEYS,
            )
        ),
    )

    # Revoking closes the key at once; the org-wide route revokes another user's key.
    bob_secret = bobs.attributes.key
    assert status_with(org, org.creds.api_key, bob_secret) == 200
    api.delete_application_key(app_key_id=bobs.id)
    assert status_with(org, org.creds.api_key, bob_secret) == 403
    api.delete_current_user_application_key(app_key_id=mine.id)
    assert status_with(org, org.creds.api_key, secret) == 403
    with pytest.raises(NotFoundException):
        api.get_application_key(app_key_id=mine.id)
    assert status_with(org, org.creds.api_key, org.creds.app_key) == 200
    bob.api_client.close()
    bob.http.close()


def test_keys_are_only_valid_in_their_own_header(org: OrgClient) -> None:
    """An application key sent as DD-API-KEY (and an API key as DD-APPLICATION-KEY) opens nothing."""
    api_key, app_key = org.creds.api_key, org.creds.app_key
    assert status_with(org, api_key, app_key) == 200
    assert status_with(org, app_key, api_key) == 403
    assert status_with(org, app_key, app_key) == 403
    assert status_with(org, api_key, api_key) == 403


def test_secrets_and_hashes_never_appear_in_reads(org: OrgClient) -> None:
    created = keys_api(org).create_api_key(body=api_key_body("hidden")).data
    app = keys_api(org).create_current_user_application_key(body=app_key_body("hidden")).data
    needles = [created.attributes.key, app.attributes.key, org.creds.app_key, org.creds.api_key]
    needles += [hash_key(n) for n in needles]
    for url in (
        "/api/v2/api_keys?page[size]=100",
        f"/api/v2/api_keys/{created.id}",
        "/api/v2/application_keys?page[size]=100",
        f"/api/v2/application_keys/{app.id}",
        "/api/v2/current_user/application_keys",
        f"/api/v2/current_user/application_keys/{app.id}",
    ):
        text = org.http.get(url).text
        assert not [n for n in needles if n in text], url
    # The audit trail records the keys' lifecycle without their secrets.
    events = [e for e in outbox(org) if e["subject"].startswith(("api_key/", "application_key/"))]
    assert {e["type"] for e in events} >= {"com.casem.api_key.created.v1", "com.casem.application_key.created.v1"}
    assert not [n for n in needles if n in json.dumps(events)]


@pytest.mark.parametrize(
    ("method", "url", "body", "pointer"),
    [
        (
            "POST",
            "/api/v2/api_keys",
            {"data": {"type": "api_keys", "attributes": {"name": ""}}},
            "/data/attributes/name",
        ),
        ("POST", "/api/v2/api_keys", {"data": {"type": "api_keys", "attributes": {}}}, "/data/attributes/name"),
        ("POST", "/api/v2/api_keys", {"data": {"type": "users", "attributes": {"name": "x"}}}, "/data/type"),
        (
            "POST",
            "/api/v2/api_keys",
            {"data": {"type": "api_keys", "attributes": {"name": "x", "remote_config_read_enabled": "yes"}}},
            "/data/attributes/remote_config_read_enabled",
        ),
        (
            "POST",
            "/api/v2/current_user/application_keys",
            {"data": {"type": "application_keys", "attributes": {"name": "x", "scopes": ["dashboards_read"]}}},
            "/data/attributes/scopes",
        ),
        ("GET", "/api/v2/api_keys?sort=secret", None, None),
        ("GET", "/api/v2/api_keys?filter[created_at][start]=yesterday", None, None),
        ("GET", "/api/v2/api_keys?include=owned_by", None, None),
        ("GET", "/api/v2/application_keys?sort=modified_at", None, None),
        ("GET", "/api/v2/application_keys?page[size]=1000", None, None),
        ("GET", "/api/v2/application_keys?page[number]=99999999999999999999", None, None),
    ],
)
def test_bad_input_is_a_400_with_a_pointer(org: OrgClient, method: str, url: str, body, pointer) -> None:
    assert_bad_request(org.http.request(method, url, json=body), pointer)


def test_update_names_the_key_in_the_body_too(org: OrgClient) -> None:
    api = keys_api(org)
    first = api.create_api_key(body=api_key_body("one")).data
    second = api.create_api_key(body=api_key_body("two")).data
    body = {"data": {"type": "api_keys", "id": second.id, "attributes": {"name": "renamed"}}}
    response = org.http.patch(f"/api/v2/api_keys/{first.id}", json=body)
    assert response.status_code == 400 and response.json()["errors"][0]["source"]["pointer"] == "/data/id"
    assert api.get_api_key(api_key_id=second.id).data.attributes.name == "two"
    with pytest.raises(ApiException, match="400"):
        api.update_api_key(
            api_key_id=first.id,
            body=APIKeyUpdateRequest(
                data=APIKeyUpdateData(
                    attributes=APIKeyUpdateAttributes(name=" "), id=first.id, type=APIKeysType.API_KEYS
                )
            ),
        )


def test_an_application_key_id_is_not_an_api_key(org: OrgClient) -> None:
    api = keys_api(org)
    app = api.create_current_user_application_key(body=app_key_body("x")).data
    with pytest.raises(NotFoundException):
        api.get_api_key(api_key_id=app.id)
    with pytest.raises(NotFoundException):
        api.delete_api_key(api_key_id=app.id)
    assert status_with(org, org.creds.api_key, app.attributes.key) == 200


def client_with(org: OrgClient, api_key: str, app_key: str | None = None) -> ApiClient:
    """The official client sending exactly these keys (no application key at all when None)."""
    config = Configuration(host=org.server.url)
    config.api_key["apiKeyAuth"] = api_key
    if app_key is not None:
        config.api_key["appKeyAuth"] = app_key
    config.enable_retry = False
    config.unstable_operations["validate"] = True  # KeyManagementApi.validate is a beta operation of the client
    return ApiClient(config)


def test_validate_takes_the_api_key_alone_and_a_revoked_key_fails_at_once(org: OrgClient) -> None:
    created = keys_api(org).create_api_key(body=api_key_body("validated")).data
    with client_with(org, created.attributes.key) as alone:
        assert AuthenticationApi(alone).validate().valid is True
        v2 = KeyManagementApi(alone).validate().data
        assert v2.id == org.org_id and v2.type == ValidateV2Type.ValidateV2
        assert v2.attributes.api_key_id == created.id and v2.attributes.valid is True
        assert v2.attributes.api_key_scopes == []
        # Everything else still needs the application key too.
        with pytest.raises(ForbiddenException):
            KeyManagementApi(alone).validate_api_key()
        keys_api(org).delete_api_key(api_key_id=created.id)
        # Revoked: the very next request is refused, with Datadog's body.
        for call in (AuthenticationApi(alone).validate, KeyManagementApi(alone).validate):
            with pytest.raises(ForbiddenException) as refused:
                call()
            assert refused.value.body == {"errors": ["Forbidden"]}


def test_validate_refuses_an_application_key_in_the_api_key_header(org: OrgClient) -> None:
    for api_key in (org.creds.app_key, "0" * 32):
        with client_with(org, api_key) as wrong:
            with pytest.raises(ForbiddenException):
                AuthenticationApi(wrong).validate()
            with pytest.raises(ForbiddenException):
                KeyManagementApi(wrong).validate()


def test_validate_keys_takes_both_keys(org: OrgClient) -> None:
    assert keys_api(org).validate_api_key().status == ValidateAPIKeyStatus.OK
    mine = keys_api(org).create_current_user_application_key(body=app_key_body("mine")).data
    with client_with(org, org.creds.api_key, mine.attributes.key) as pair:
        assert KeyManagementApi(pair).validate_api_key().status == ValidateAPIKeyStatus.OK
        KeyManagementApi(pair).delete_current_user_application_key(app_key_id=mine.id)
        with pytest.raises(ForbiddenException):
            KeyManagementApi(pair).validate_api_key()
    with client_with(org, org.creds.app_key, org.creds.api_key) as swapped, pytest.raises(ForbiddenException):
        KeyManagementApi(swapped).validate_api_key()
