"""The console's on-call pages over plain HTTP: the same answers as the On-Call API, org scoping, CSRF, and
acknowledge/resolve as the Paging API then reports them."""

from __future__ import annotations

import html
import re

import httpx

from tests.console.oncall_world import TIME_ZONE, OnCallWorld, build_on_call
from tests.console.server import ConsoleServer, World
from tests.console.test_http import csrf_of, sign_in
from tests.support.live_server import LiveServer

MISSING = "00000000-0000-4000-8000-000000000000"
HTMX = {"HX-Request": "true"}


def api_client(api: LiveServer, world: World) -> httpx.Client:
    keys = {"DD-API-KEY": world.creds.api_key, "DD-APPLICATION-KEY": world.creds.app_key}
    return httpx.Client(base_url=api.url, headers=keys, timeout=30)


def api_status(api: LiveServer, world: World, page_id: str) -> str:
    answer = api_client(api, world).get(f"/api/v2/casem/on-call/pages/{page_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["attributes"]["status"]


def team_row(text: str, team_id: str) -> str:
    found = re.search(rf'<tr data-team-id="{team_id}">(.*?)</tr>', text, re.S)
    assert found, text
    return found.group(1)


def page_rows(text: str) -> list[str]:
    return re.findall(r'<tr id="page-([0-9a-f-]{36})" class="page-row"', text)


def test_who_is_on_call_per_team_is_the_on_call_apis_answer(console: ConsoleServer, case_api: LiveServer) -> None:
    world = console.new_world()
    oc = build_on_call(console, world)
    client = sign_in(console, world.person.email)
    page = client.get("/on-call")
    assert page.status_code == 200
    assert '<a href="/on-call" aria-current="page">On-call</a>' in page.text
    row = team_row(page.text, oc.team_id)

    answer = api_client(case_api, world).get(f"/api/v2/on-call/teams/{oc.team_id}/on-call?include=responders")
    assert answer.status_code == 200, answer.text
    responders = [u["attributes"]["name"] for u in answer.json()["included"]]
    assert len(responders) == 1 and responders[0] in (oc.alice, oc.bob)
    on_call_cell = re.search(r'<td class="on-call-now">(.*?)</td>', row, re.S).group(1)  # type: ignore[union-attr]
    assert re.findall(r"<strong>(.*?)</strong>", on_call_cell) == responders
    assert "SRE policy" in on_call_cell
    # The policy's second step (the admin) is who it escalates to; the schedule is one link away.
    assert "Step 2:" in row
    assert f'<a href="/on-call/schedules/{oc.schedule_id}">{oc.schedule_name}</a>' in row
    # A team without a policy says so.
    assert "No escalation policy" not in row


def test_schedule_timeline_in_its_zone_with_who_is_on_call_now(console: ConsoleServer, case_api: LiveServer) -> None:
    world = console.new_world()
    oc = build_on_call(console, world)
    client = sign_in(console, world.person.email)
    page = client.get(f"/on-call/schedules/{oc.schedule_id}")
    assert page.status_code == 200, page.text
    assert f"Times in <strong>{TIME_ZONE}</strong>" in page.text
    answer = api_client(case_api, world).get(f"/api/v2/on-call/schedules/{oc.schedule_id}/on-call?include=user")
    now_name = answer.json()["included"][0]["attributes"]["name"]
    panel = re.search(r'<section class="panel now-panel".*?</section>', page.text, re.S).group(0)  # type: ignore[union-attr]
    assert now_name in panel
    # The combined row's current block is outlined; the table marks the same shift.
    assert re.search(r'class="tl-block who-\d now">\s*<title>' + re.escape(now_name), page.text)
    current = re.search(r'<tr class="current" aria-current="true">(.*?)</tr>', page.text, re.S)
    assert current and now_name in current.group(1) and "on call now" in current.group(1)
    # Seven local days of ticks; the override (Bob, tomorrow 12:00-18:00 UTC) is its own row and a shift of its own.
    assert len(re.findall(r'class="tl-day long"', page.text)) == 7
    assert f"Override: <strong>{oc.bob}</strong>" in page.text
    shifts = re.findall(r"<tr(?: class=\"current\" aria-current=\"true\")?>\s*<td>(.*?)</td>.*?<td>(\w+)</td>\s*</tr>",
                        page.text, re.S)  # fmt: skip
    assert any(oc.bob in who and source == "override" for who, source in shifts), shifts
    assert any(source == "rotation" for _, source in shifts)


def test_acknowledge_and_resolve_as_the_paging_api_reports_them(console: ConsoleServer, case_api: LiveServer) -> None:
    world = console.new_world()
    oc = build_on_call(console, world, pages_to_open=2)
    first, second = oc.page_ids
    client = sign_in(console, world.person.email)
    listing = client.get("/on-call/pages")
    assert listing.status_code == 200
    assert '<a href="/on-call" aria-current="page">On-call</a>' in listing.text
    assert page_rows(listing.text) == [second, first]  # newest first
    token = csrf_of(client, "/on-call/pages")

    acked = client.post(f"/on-call/pages/{first}/acknowledge", headers={**HTMX, "X-CSRF-Token": token})
    assert acked.status_code == 200, acked.text
    assert acked.text.lstrip().startswith(f'<tr id="page-{first}"')  # the row htmx swaps in
    assert 'data-status="acknowledged"' in acked.text and "Acknowledge " not in acked.text
    assert oc.page_keys[0] in acked.headers["HX-Trigger"]
    assert api_status(case_api, world, first) == "acknowledged"
    assert api_status(case_api, world, second) == "triggered"

    assert page_rows(client.get("/on-call/pages?status=acknowledged").text) == [first]
    assert page_rows(client.get("/on-call/pages?status=triggered").text) == [second]

    # A plain form post (no JavaScript) resolves and comes back to the list.
    resolved = client.post(f"/on-call/pages/{first}/resolve", data={"csrf_token": token})
    assert resolved.status_code == 303 and resolved.headers["location"] == "/on-call/pages"
    assert api_status(case_api, world, first) == "resolved"
    assert page_rows(client.get("/on-call/pages?status=resolved").text) == [first]
    # Resolving again changes nothing and says so.
    again = client.post(f"/on-call/pages/{first}/resolve", headers={**HTMX, "X-CSRF-Token": token})
    assert again.status_code == 200 and "already resolved" in again.headers["HX-Trigger"]
    assert client.get("/on-call/pages?status=nonsense").status_code == 400


def test_another_orgs_schedule_and_page_are_the_same_404_as_missing_ones(
    console: ConsoleServer, case_api: LiveServer
) -> None:
    mine, theirs = console.new_world(), console.new_world()
    build_on_call(console, mine)
    their = build_on_call(console, theirs)
    client = sign_in(console, mine.person.email)
    token = csrf_of(client, "/on-call")
    missing = client.get(f"/on-call/schedules/{MISSING}")
    assert missing.status_code == 404
    page = client.get(f"/on-call/schedules/{their.schedule_id}")
    assert page.status_code == 404
    assert page.text.replace(their.schedule_id, "X") == missing.text.replace(MISSING, "X")
    assert their.schedule_name not in page.text

    overview = client.get("/on-call").text
    assert their.team_id not in overview and their.schedule_id not in overview
    assert their.page_ids[0] not in client.get("/on-call/pages").text
    for action in ("acknowledge", "resolve"):
        for headers in ({"X-CSRF-Token": token}, {**HTMX, "X-CSRF-Token": token}):
            gone = client.post(f"/on-call/pages/{MISSING}/{action}", headers=headers)
            answer = client.post(f"/on-call/pages/{their.page_ids[0]}/{action}", headers=headers)
            assert answer.status_code == gone.status_code == 404
            assert answer.text.replace(their.page_ids[0], "X") == gone.text.replace(MISSING, "X")
    assert api_status(case_api, theirs, their.page_ids[0]) == "triggered"


def test_forged_acknowledge_and_resolve_are_refused(console: ConsoleServer, case_api: LiveServer) -> None:
    world = console.new_world()
    oc = build_on_call(console, world)
    page_id = oc.page_ids[0]
    client = sign_in(console, world.person.email)
    token = csrf_of(client, "/on-call/pages")
    for action in ("acknowledge", "resolve"):
        url = f"/on-call/pages/{page_id}/{action}"
        assert client.post(url, headers=HTMX).status_code == 403
        assert client.post(url, data={"csrf_token": "x" * 43}).status_code == 403
        cross = client.post(url, data={"csrf_token": token}, headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
    assert api_status(case_api, world, page_id) == "triggered"
    # Signed out: the pages send the visitor to the sign-in form, the buttons to a 401 htmx follows.
    anonymous = httpx.Client(base_url=console.url, follow_redirects=False, timeout=30)
    assert anonymous.get("/on-call").headers["location"].startswith("/sign-in")
    assert anonymous.post(f"/on-call/pages/{page_id}/resolve", headers=HTMX).status_code == 401


def test_page_titles_render_as_text(console: ConsoleServer) -> None:
    world = console.new_world()
    xss = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    oc: OnCallWorld = build_on_call(console, world, title=xss)
    client = sign_in(console, world.person.email)
    text = client.get("/on-call/pages").text
    assert html.escape(xss, quote=False) in text
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert oc.page_keys[0] in text
