"""The console over plain HTTP: sign-in, sessions, CSRF, org scoping and escaping, without a browser."""

from __future__ import annotations

import re

import httpx

from tests.console.server import PASSWORD, ConsoleServer, World


def sign_in(server: ConsoleServer, email: str, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    form = client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    answer = client.post("/sign-in", data={"csrf_token": token.group(1), "email": email, "password": password})
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(client: httpx.Client, path: str = "/cases") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'data-csrf="([^"]+)"', page.text)
    assert found
    return found.group(1)


def test_sign_in_and_case_list(console: ConsoleServer) -> None:
    world = console.new_world()
    client = sign_in(console, world.person.email)
    page = client.get("/cases")
    assert page.status_code == 200
    assert "<title>Cases · casem</title>" in page.text


def test_wrong_password_is_refused_with_one_message(console: ConsoleServer) -> None:
    world: World = console.new_world()
    client = httpx.Client(base_url=console.url, timeout=30)
    for email in (world.person.email, "nobody@example.com"):
        form = client.get("/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        answer = client.post("/sign-in", data={"csrf_token": token, "email": email, "password": "wrong password 123"})
        assert answer.status_code == 401
        assert "do not match an account" in answer.text


def _try_password(client: httpx.Client, email: str, password: str) -> httpx.Response:
    form = client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    return client.post("/sign-in", data={"csrf_token": token, "email": email, "password": password})


def test_a_run_of_wrong_passwords_makes_the_account_wait(console: ConsoleServer) -> None:
    """Found trying passwords as an attacker would: nothing limited guesses. After five wrong passwords in a row
    the account waits (429 with Retry-After, the right password refused too, unchecked); once the wait is over the
    right password works and clears the count; another account is not affected."""
    import sqlalchemy as sa

    from casem.adapters.storage.tables import console_accounts
    from casem.app.console.accounts import FREE_FAILURES
    from casem.domain.events import utcnow

    world = console.new_world()
    other = console.new_world()
    client = httpx.Client(base_url=console.url, timeout=30, follow_redirects=False)
    for _ in range(FREE_FAILURES - 1):
        assert _try_password(client, world.person.email, "wrong password 123").status_code == 401
    blocked = _try_password(client, world.person.email, "wrong password 123")
    assert blocked.status_code == 429, blocked.text
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert "Too many failed sign-ins for this address. Try again in 1 minute" in blocked.text
    again = _try_password(client, world.person.email, PASSWORD)
    assert again.status_code == 429 and "Retry-After" in again.headers
    assert _try_password(client, other.person.email, PASSWORD).status_code == 303

    async def wait_is_over() -> None:  # a minute passes
        async with console.context.uow() as uow:
            await uow.execute(
                sa.update(console_accounts)
                .where(console_accounts.c.email == world.person.email.lower())
                .values(sign_in_blocked_until=utcnow())
            )
            await uow.commit()

    console.call(wait_is_over())
    assert _try_password(client, world.person.email, PASSWORD).status_code == 303
    # The count starts over: four more wrong passwords are plain 401s.
    for _ in range(FREE_FAILURES - 1):
        assert _try_password(client, world.person.email, "wrong password 123").status_code == 401


def test_the_wait_doubles_up_to_a_quarter_of_an_hour() -> None:
    from datetime import timedelta

    from casem.app.console.accounts import FREE_FAILURES, wait_after

    assert [wait_after(n) for n in range(FREE_FAILURES)] == [None] * FREE_FAILURES
    waits = [wait_after(FREE_FAILURES + n) for n in range(6)]
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert waits[4:] == [timedelta(minutes=15)] * 2
    assert wait_after(10_000) == timedelta(minutes=15)


XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def test_xss_in_titles_comments_attributes_and_file_names_renders_as_text(console: ConsoleServer) -> None:
    from tests.console.server import new_case

    world = console.new_world()
    case_id, key = new_case(console, world, f"Title {XSS}", description=f"desc {XSS} [x](javascript:alert(3))")
    client = sign_in(console, world.person.email)
    token = csrf_of(client, f"/cases/{key}")
    headers = {"X-CSRF-Token": token}
    assert (
        client.post(
            f"/cases/{key}/comments", data={"message": f"hi {XSS} [y](javascript:alert(4))"}, headers=headers
        ).status_code
        == 303
    )
    upload = client.post(
        f"/cases/{key}/attachments",
        files={"file": ('"><svg onload=alert(5)>.txt', b"hello", "text/plain")},
        headers=headers,
    )
    assert upload.status_code == 303, upload.text
    for path in (f"/cases/{key}", f"/cases?q={key}", f"/board?project={world.project_key}"):
        page = client.get(path).text
        assert "<script>alert(1)</script>" not in page
        assert "onerror=alert" not in page.replace("onerror=alert(2)&gt;", "")  # only as escaped text
        assert "<svg onload" not in page
        assert 'href="javascript' not in page
    page = client.get(f"/cases/{key}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the title, as text
    assert "&gt;&lt;svg onload=alert(5)&gt;.txt" in page  # the file name, as text


def test_another_orgs_case_is_the_same_404_as_a_missing_one(console: ConsoleServer) -> None:
    from tests.console.server import new_case

    mine, theirs = console.new_world(), console.new_world()
    their_id, their_key = new_case(console, theirs, "their secret case")
    client = sign_in(console, mine.person.email)
    token = csrf_of(client)
    missing = client.get("/cases/00000000-0000-4000-8000-000000000000")
    for ref in (their_id, their_key):
        page = client.get(f"/cases/{ref}")
        assert page.status_code == 404
        assert "their secret case" not in page.text
        assert page.text.replace(ref, "X") == missing.text.replace("00000000-0000-4000-8000-000000000000", "X")
        for action, data in (
            ("status", {"status": "CLOSED"}),
            ("comments", {"message": "hi"}),
            ("title", {"title": "t"}),
        ):
            answer = client.post(f"/cases/{ref}/{action}", data=data, headers={"X-CSRF-Token": token})
            assert answer.status_code == 404
    bulk = client.post("/cases/bulk", data={"case_id": their_id, "action": "close"}, headers={"X-CSRF-Token": token})
    assert bulk.status_code == 404
    assert client.get(f"/board?project={theirs.project_id}").status_code == 404
    listing = client.get(f"/cases?q={their_key}")
    assert "their secret case" not in listing.text


def test_forged_posts_are_refused(console: ConsoleServer) -> None:
    from tests.console.server import new_case

    world = console.new_world()
    _, key = new_case(console, world, "Keep me open")
    client = sign_in(console, world.person.email)
    token = csrf_of(client)
    # No token, a wrong token, the right token from another site: all 403, the case unchanged.
    assert client.post(f"/cases/{key}/status", data={"status": "CLOSED"}).status_code == 403
    assert client.post(f"/cases/{key}/status", data={"status": "CLOSED", "csrf_token": "x" * 43}).status_code == 403
    cross = client.post(
        f"/cases/{key}/status",
        data={"status": "CLOSED", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert 'value="OPEN" selected' in client.get(f"/cases/{key}").text
    # The genuine form post works.
    assert client.post(f"/cases/{key}/status", data={"status": "CLOSED", "csrf_token": token}).status_code == 303
    assert 'value="CLOSED" selected' in client.get(f"/cases/{key}").text


def test_session_fixation_and_sign_out(console: ConsoleServer) -> None:
    world = console.new_world()
    client = httpx.Client(base_url=console.url, follow_redirects=False, timeout=30)
    planted = "attacker-chosen-session-token-value-0123456789"
    client.cookies.set("casem_session", planted)
    form = client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    answer = client.post("/sign-in", data={"csrf_token": token, "email": world.person.email, "password": PASSWORD})
    assert answer.status_code == 303
    issued = answer.cookies.get("casem_session")
    assert issued and issued != planted
    set_cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie.replace("Lax", "lax")
    # The planted value opens nothing.
    attacker = httpx.Client(base_url=console.url, follow_redirects=False, cookies={"casem_session": planted})
    assert attacker.get("/cases").status_code == 303
    # Sign out; the old cookie copied elsewhere opens nothing either.
    stolen = httpx.Client(base_url=console.url, follow_redirects=False, cookies={"casem_session": issued})
    assert stolen.get("/cases").status_code == 200
    csrf = csrf_of(client)
    assert client.post("/sign-out", data={"csrf_token": csrf}).status_code == 303
    assert stolen.get("/cases").status_code == 303
    assert stolen.get("/cases").headers["location"].startswith("/sign-in")


def test_security_headers_and_assets_served_locally(console: ConsoleServer) -> None:
    world = console.new_world()
    client = sign_in(console, world.person.email)
    page = client.get("/cases")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(src).status_code == 200, src
    assert "http://" not in re.sub(r'(?:action|href)="[^"]*"', "", page.text.split("<body", 1)[0]).replace(
        "http://www.w3.org", ""
    )


def test_xss_in_custom_attribute_values_and_names_renders_as_text(console: ConsoleServer) -> None:
    from casem.app.case_types.service import create_case_type
    from casem.app.custom_attributes.service import create_config
    from tests.console.server import new_case

    world = console.new_world()

    async def configure() -> str:
        async with console.context.uow() as uow:
            case_type = await create_case_type(uow, world.creds.org_id, world.creds.user_id, name="Security")
            await uow.session.flush()
            await create_config(
                uow,
                world.creds.org_id,
                world.creds.user_id,
                case_type.id,
                key="impact",
                display_name="Impact <b>bold</b>",
                type="TEXT",
            )
            await uow.commit()
            return case_type.id

    type_id = console.call(configure())
    _, key = new_case(console, world, "attr case", type_id=type_id)
    client = sign_in(console, world.person.email)
    token = csrf_of(client, f"/cases/{key}")
    answer = client.post(f"/cases/{key}/custom/impact", data={"value": XSS}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 303, answer.text
    page = client.get(f"/cases/{key}").text
    assert "<script>alert(1)</script>" not in page and "<b>bold</b>" not in page
    around = page[page.find('id="attr-1"') - 100 : page.find('id="attr-1"') + 300]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, around  # the stored value, as text in its field
    assert "Impact &lt;b&gt;bold&lt;/b&gt;" in page
