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
