"""Personal access tokens through datadog-api-client: create (shown once), get, list, rename, revoke.

A token is only as good as what it opens: each one made here is then sent as DD-APPLICATION-KEY on a real
request, refused once revoked (at once, although case-api remembers key pairs) or expired.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.api.key_management_api import KeyManagementApi
from datadog_api_client.v2.model.personal_access_token_create_attributes import PersonalAccessTokenCreateAttributes
from datadog_api_client.v2.model.personal_access_token_create_data import PersonalAccessTokenCreateData
from datadog_api_client.v2.model.personal_access_token_create_request import PersonalAccessTokenCreateRequest
from datadog_api_client.v2.model.personal_access_token_update_attributes import PersonalAccessTokenUpdateAttributes
from datadog_api_client.v2.model.personal_access_token_update_data import PersonalAccessTokenUpdateData
from datadog_api_client.v2.model.personal_access_token_update_request import PersonalAccessTokenUpdateRequest
from datadog_api_client.v2.model.personal_access_tokens_include_query_parameter_item import (
    PersonalAccessTokensIncludeQueryParameterItem,
)
from datadog_api_client.v2.model.personal_access_tokens_sort import PersonalAccessTokensSort
from datadog_api_client.v2.model.personal_access_tokens_type import PersonalAccessTokensType

from casem.adapters.storage.tables import credentials
from casem.app.auth import PRINCIPALS, Principal, PrincipalCache
from casem.domain.identity import hash_key
from tests.api.helpers import add_user, as_user, assert_bad_request, outbox
from tests.support.api_client import OrgClient

PAT = PersonalAccessTokensType.PERSONAL_ACCESS_TOKENS


def keys_api(org: OrgClient) -> KeyManagementApi:
    return KeyManagementApi(org.api_client)


def token_body(name: str, days: float = 30, scopes: list[str] | None = None) -> PersonalAccessTokenCreateRequest:
    attributes = PersonalAccessTokenCreateAttributes(
        name=name, expires_at=datetime.now(UTC) + timedelta(days=days), scopes=scopes or []
    )
    return PersonalAccessTokenCreateRequest(data=PersonalAccessTokenCreateData(attributes=attributes, type=PAT))


def status_with(org: OrgClient, app_key: str, api_key: str | None = None) -> int:
    """The status of a harmless authenticated request with the org's API key and this DD-APPLICATION-KEY."""
    with httpx.Client(base_url=org.server.url, timeout=30) as http:
        headers = {"DD-API-KEY": api_key or org.creds.api_key, "DD-APPLICATION-KEY": app_key}
        return http.get("/api/v2/cases/projects", headers=headers).status_code


def test_token_lifecycle_opens_as_its_user_then_closes_at_once(org: OrgClient) -> None:
    api = keys_api(org)
    expires = datetime.now(UTC) + timedelta(days=7)
    created = api.create_personal_access_token(
        body=PersonalAccessTokenCreateRequest(
            data=PersonalAccessTokenCreateData(
                attributes=PersonalAccessTokenCreateAttributes(name="ci", expires_at=expires, scopes=[]), type=PAT
            )
        )
    ).data
    secret = created.attributes.key
    assert secret.startswith(created.attributes.public_portion + "_") and len(secret) > 40
    assert created.attributes.name == "ci" and created.attributes.scopes == []
    assert abs((created.attributes.expires_at - expires).total_seconds()) < 1
    assert created.relationships.owned_by.data.id == org.user_id

    # The token acts as its user, in DD-APPLICATION-KEY beside the org's API key; twice (the second answered
    # from the auth cache), then it must close at once when revoked.
    assert status_with(org, secret) == 200
    assert status_with(org, secret) == 200
    # Not as an API key: a token names a user, not an org.
    assert status_with(org, org.creds.app_key, api_key=secret) == 403

    fetched = api.get_personal_access_token(token_id=created.id).data
    assert fetched.type == PAT and fetched.attributes.name == "ci"
    assert fetched.attributes.public_portion == created.attributes.public_portion
    assert fetched.attributes.last_used_at is not None  # the requests above used it
    assert "key" not in fetched.attributes.to_dict()
    assert fetched.relationships.owned_by.data.id == org.user_id

    renamed = api.update_personal_access_token(
        token_id=created.id,
        body=PersonalAccessTokenUpdateRequest(
            data=PersonalAccessTokenUpdateData(
                attributes=PersonalAccessTokenUpdateAttributes(name="ci-eu"), id=created.id, type=PAT
            )
        ),
    ).data
    assert renamed.id == created.id and renamed.attributes.name == "ci-eu"
    assert renamed.attributes.modified_at is not None
    assert status_with(org, secret) == 200  # renaming does not touch the secret

    api.revoke_personal_access_token(token_id=created.id)
    assert status_with(org, secret) == 403
    with pytest.raises(NotFoundException):
        api.get_personal_access_token(token_id=created.id)
    with pytest.raises(NotFoundException):
        api.revoke_personal_access_token(token_id=created.id)
    assert created.id not in [t.id for t in api.list_personal_access_tokens(page_size=100).data]
    assert status_with(org, org.creds.app_key) == 200  # only the token closed


def test_token_of_another_user_acts_as_that_user(org: OrgClient) -> None:
    bob_id = add_user(org, "bob-pat@example.com")
    bob = as_user(org, bob_id)
    token = keys_api(bob).create_personal_access_token(body=token_body("bob's")).data
    assert token.relationships.owned_by.data.id == bob_id
    with httpx.Client(base_url=org.server.url, timeout=30) as http:
        headers = {"DD-API-KEY": org.creds.api_key, "DD-APPLICATION-KEY": token.attributes.key}
        me = http.get("/api/v2/current_user/application_keys", headers=headers)
    assert me.status_code == 200  # the caller is bob: his own keys (the one as_user issued), not the admin's
    assert {k["relationships"]["owned_by"]["data"]["id"] for k in me.json()["data"]} == {bob_id}


def test_an_expired_token_opens_nothing(org: OrgClient) -> None:
    token = keys_api(org).create_personal_access_token(body=token_body("short")).data
    assert status_with(org, token.attributes.key) == 200

    async def expire() -> None:  # tokens cannot be made to expire within a day: move this one's expiry back
        async with org.server.context.uow() as uow:
            await uow.execute(
                sa.update(credentials)
                .where(credentials.c.id == token.id)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            await uow.commit()

    org.server.call(expire())
    PRINCIPALS.forget_all()  # as another process would see it, or this one once the cache ages
    assert status_with(org, token.attributes.key) == 403
    # Still listed (and revocable) until revoked, as Datadog lists expired tokens.
    assert keys_api(org).get_personal_access_token(token_id=token.id).data.attributes.expires_at < datetime.now(UTC)
    keys_api(org).revoke_personal_access_token(token_id=token.id)


def test_a_remembered_token_closes_when_it_expires() -> None:
    """The auth cache keeps a token's expiry: a pair remembered a moment before it is not honoured after."""
    cache = PrincipalCache(ttl_s=3600)
    now = datetime.now(UTC)
    cache.put(("a", "t1"), Principal("org", "user", "t1", now - timedelta(seconds=1)), cache.generation, now=1.0)
    cache.put(("a", "t2"), Principal("org", "user", "t2", now + timedelta(hours=1)), cache.generation, now=1.0)
    assert cache.get(("a", "t1"), now=2.0) is None
    assert cache.get(("a", "t2"), now=2.0) == Principal("org", "user")


def test_listing_filters_sorts_and_pages_as_the_client_sends_them(org: OrgClient) -> None:
    api = keys_api(org)
    bob_id = add_user(org, "bob-list@example.com")
    bob = as_user(org, bob_id)
    for name, days in (("pat-beta", 10), ("pat-alpha", 30), ("pat-gamma", 20)):
        api.create_personal_access_token(body=token_body(name, days))
    keys_api(bob).create_personal_access_token(body=token_body("pat-bob", 5))

    first = api.list_personal_access_tokens(sort=PersonalAccessTokensSort.NAME_ASCENDING, filter="pat-", page_size=2)
    assert [t.attributes.name for t in first.data] == ["pat-alpha", "pat-beta"]
    assert first.meta.page.total_filtered_count == 4
    assert all(t.type.value == "personal_access_tokens" for t in first.data)
    second = api.list_personal_access_tokens(
        sort=PersonalAccessTokensSort.NAME_ASCENDING, filter="pat-", page_size=2, page_number=1
    )
    assert [t.attributes.name for t in second.data] == ["pat-bob", "pat-gamma"]
    soonest = api.list_personal_access_tokens(sort=PersonalAccessTokensSort.EXPIRES_AT_ASCENDING).data
    assert [t.attributes.name for t in soonest] == ["pat-bob", "pat-beta", "pat-gamma", "pat-alpha"]
    newest = api.list_personal_access_tokens(sort=PersonalAccessTokensSort.CREATED_AT_DESCENDING, page_size=1)
    assert newest.data[0].attributes.name == "pat-bob"
    mine = api.list_personal_access_tokens(filter_owned_by=[org.user_id]).data
    assert sorted(t.attributes.name for t in mine) == ["pat-alpha", "pat-beta", "pat-gamma"]
    both = api.list_personal_access_tokens(filter_owned_by=[org.user_id, bob_id]).meta.page.total_filtered_count
    assert both == 4
    # The public portion finds its token; casem detects no leaks, so filter[leaked]=true matches none.
    public = mine[0].attributes.public_portion
    assert [t.attributes.public_portion for t in api.list_personal_access_tokens(filter=public).data] == [public]
    assert api.list_personal_access_tokens(filter_leaked=True).data == []
    assert api.list_personal_access_tokens(filter_leaked=False).meta.page.total_filtered_count == 4
    with_leaks = api.list_personal_access_tokens(
        filter="pat-alpha", include=[PersonalAccessTokensIncludeQueryParameterItem.LEAK_INFORMATION]
    )
    assert with_leaks.data[0].relationships.leak_information.data is None
    # Application keys are not tokens, and tokens are not application keys.
    assert not [k for k in api.list_application_keys(page_size=100).data if k.attributes.name.startswith("pat-")]


def test_secrets_and_hashes_never_appear_in_reads_or_events(org: OrgClient) -> None:
    token = keys_api(org).create_personal_access_token(body=token_body("hidden")).data
    needles = [token.attributes.key, hash_key(token.attributes.key)]
    for url in ("/api/v2/personal_access_tokens?page[size]=100", f"/api/v2/personal_access_tokens/{token.id}"):
        assert not [n for n in needles if n in org.http.get(url).text], url
    keys_api(org).revoke_personal_access_token(token_id=token.id)
    events = [e for e in outbox(org) if e["subject"] == f"personal_access_token/{token.id}"]
    assert [e["type"] for e in events] == [
        "com.casem.personal_access_token.created.v1",
        "com.casem.personal_access_token.revoked.v1",
    ]
    assert not [n for n in needles if n in json.dumps(events)]


def test_an_application_key_id_is_not_a_token_and_back(org: OrgClient) -> None:
    api = keys_api(org)
    token = api.create_personal_access_token(body=token_body("pat")).data
    with pytest.raises(NotFoundException):
        api.get_application_key(app_key_id=token.id)
    with pytest.raises(NotFoundException):
        api.delete_application_key(app_key_id=token.id)
    app_key_id = api.list_current_user_application_keys().data[0].id
    with pytest.raises(NotFoundException):
        api.get_personal_access_token(token_id=app_key_id)
    with pytest.raises(NotFoundException):
        api.revoke_personal_access_token(token_id=app_key_id)
    assert status_with(org, token.attributes.key) == 200


@pytest.mark.parametrize(
    ("method", "url", "body", "pointer"),
    [
        (
            "POST",
            "/api/v2/personal_access_tokens",
            {"data": {"type": "personal_access_tokens", "attributes": {}}},
            "/data/attributes/name",
        ),
        (
            "POST",
            "/api/v2/personal_access_tokens",
            {"data": {"type": "personal_access_tokens", "attributes": {"name": "x", "scopes": []}}},
            "/data/attributes/expires_at",
        ),
        (
            "POST",
            "/api/v2/personal_access_tokens",
            {"data": {"type": "personal_access_tokens", "attributes": {"name": "x", "expires_at": "tomorrow"}}},
            "/data/attributes/expires_at",
        ),
        (
            "POST",
            "/api/v2/personal_access_tokens",
            {
                "data": {
                    "type": "personal_access_tokens",
                    "attributes": {"name": "x", "expires_at": "2020-01-01T00:00:00Z", "scopes": []},
                }
            },
            "/data/attributes/expires_at",
        ),
        (
            "POST",
            "/api/v2/personal_access_tokens",
            {
                "data": {
                    "type": "personal_access_tokens",
                    "attributes": {"name": "x", "expires_at": "2099-01-01T00:00:00Z", "scopes": ["cases_read"]},
                }
            },
            "/data/attributes/scopes",
        ),
        ("POST", "/api/v2/personal_access_tokens", {"data": {"type": "api_keys", "attributes": {}}}, "/data/type"),
        ("GET", "/api/v2/personal_access_tokens?sort=secret", None, None),
        ("GET", "/api/v2/personal_access_tokens?include=owned_by", None, None),
        ("GET", "/api/v2/personal_access_tokens?page[size]=1000", None, None),
        ("GET", "/api/v2/personal_access_tokens?filter[leaked]=maybe", None, None),
    ],
)
def test_bad_input_is_a_400_with_a_pointer(org: OrgClient, method: str, url: str, body, pointer) -> None:
    assert_bad_request(org.http.request(method, url, json=body), pointer)


def test_expiry_less_than_a_day_ahead_is_refused_through_the_client(org: OrgClient) -> None:
    with pytest.raises(ApiException, match="400"):
        keys_api(org).create_personal_access_token(body=token_body("soon", days=0.5))
    assert keys_api(org).list_personal_access_tokens(filter="soon").data == []


def test_update_names_the_token_in_the_body_too(org: OrgClient) -> None:
    api = keys_api(org)
    first = api.create_personal_access_token(body=token_body("one")).data
    second = api.create_personal_access_token(body=token_body("two")).data
    body = {"data": {"type": "personal_access_tokens", "id": second.id, "attributes": {"name": "renamed"}}}
    response = org.http.patch(f"/api/v2/personal_access_tokens/{first.id}", json=body)
    assert response.status_code == 400 and response.json()["errors"][0]["source"]["pointer"] == "/data/id"
    assert api.get_personal_access_token(token_id=second.id).data.attributes.name == "two"
    assert re.fullmatch(r"casempat_[0-9a-f]{16}", first.attributes.public_portion)
