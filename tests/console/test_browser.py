"""The console in real headless Chromium: a person triages cases from sign-in to sign-out.

Every page visited is checked with axe-core (no serious or critical violation) and photographed at
1440×900 and 390×844 (into var/console-screenshots, or CASEM_SCREENSHOT_DIR).
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.console.browser import check_page, new_context, sign_in
from tests.console.server import ConsoleServer, new_case
from tests.support.screenshots import screenshot_dir


def test_triage_from_list_to_closed(console: ConsoleServer, page: Page) -> None:
    world = console.new_world()
    shots = screenshot_dir()
    _, disk_key = new_case(console, world, "Disk full on db-1", priority="P1", description="The **disk** is full.")
    new_case(console, world, "Login page slow", priority="P3")
    new_case(console, world, "Certificate expires soon", priority="P2")

    page.goto(f"{console.url}/sign-in")
    check_page(page, "sign-in", shots)
    sign_in(page, console.url, world.person.email)
    expect(page.locator("#case-count")).to_contain_text("3 cases")
    check_page(page, "cases", shots)

    # The search box speaks the query language, suggests fields and values, and points at a parse error.
    box = page.get_by_role("combobox", name="Search cases")
    box.fill("prio")
    expect(page.locator("#suggestions li").first).to_contain_text("priority:")
    box.press("ArrowDown")
    box.press("Enter")
    expect(box).to_have_value("priority:")
    expect(page.locator("#suggestions li", has_text="P1")).to_be_visible()
    box.fill("status:(open")
    expect(page.locator("#query-help.query-error")).to_contain_text("position 12")
    box.fill("priority:P1 disk")
    box.press("Enter")
    expect(page.locator("#case-count")).to_contain_text("1 case")
    expect(page.locator("#case-table tbody tr")).to_have_count(1)
    check_page(page, "cases-search", shots)

    # Open the case, comment in Markdown, change its status.
    page.get_by_role("link", name=disk_key).click()
    page.wait_for_url(f"{console.url}/cases/{disk_key}")
    expect(page.locator("#case-description strong")).to_have_text("disk")
    page.get_by_label("Comment (Markdown)").fill("Freed **2 GB**; see `df -h`.")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.locator("#timeline .comment .markdown strong")).to_have_text("2 GB")
    expect(page.locator("#comment-message")).to_have_value("")
    page.get_by_label("Status").select_option("IN_PROGRESS")
    expect(page.locator("#timeline")).to_contain_text("status open → in progress")
    check_page(page, "case", shots)

    # Edit the title in place.
    page.get_by_text("Edit title").click()
    page.locator("#title-input").fill("Disk full on db-1 (primary)")
    page.locator("#title-edit").get_by_role("button", name="Save").click()
    expect(page.locator("#case-title")).to_have_text("Disk full on db-1 (primary)")

    # Close it from the list with a bulk action.
    page.goto(f"{console.url}/cases?q=status:in_progress")
    page.get_by_label(f"Select {disk_key}").check()
    page.get_by_label("Action for the selected cases").select_option("close")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#flash")).to_contain_text("1 case updated")
    page.goto(f"{console.url}/cases?q=status:closed")
    expect(page.locator("#case-table tbody")).to_contain_text(disk_key)


def test_saved_view_board_and_shortcuts(console: ConsoleServer, page: Page) -> None:
    world = console.new_world()
    shots = screenshot_dir()
    _, first = new_case(console, world, "Drag me", priority="P2")
    _, second = new_case(console, world, "Move me with the keyboard", priority="P4")
    sign_in(page, console.url, world.person.email)

    # Saved view from a search.
    page.get_by_role("combobox", name="Search cases").fill("priority:P2")
    page.get_by_role("combobox", name="Search cases").press("Enter")
    expect(page.locator("#case-count")).to_contain_text("1 case")
    page.goto(page.url)  # the save form carries the query of the page it is on
    page.get_by_text("Save this search as a view").click()
    page.get_by_label("Name").fill("Urgent-ish")
    page.get_by_role("button", name="Save view").click()
    expect(page.locator("#saved-views")).to_contain_text("Urgent-ish")
    page.goto(f"{console.url}/cases")
    page.locator("#saved-views").get_by_role("link", name="Urgent-ish").click()
    expect(page.locator("#case-count")).to_contain_text("1 case")
    expect(page.locator("#case-table")).to_contain_text(first)

    # Keyboard shortcuts: / focuses the search, j selects the first row.
    page.goto(f"{console.url}/cases")
    page.locator("body").press("/")
    expect(page.get_by_role("combobox", name="Search cases")).to_be_focused()
    page.get_by_role("combobox", name="Search cases").press("Escape")
    page.locator("main").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    expect(page.locator("#case-table tr.selected")).to_have_count(1)

    # The board: drag a card to In progress, move another with the keyboard.
    page.goto(f"{console.url}/board?project={world.project_key}")
    check_page(page, "board", shots)
    card = page.locator(f'.card[data-case-key="{first}"]')
    target = page.locator('.cards[data-status="IN_PROGRESS"]')
    card.drag_to(target)
    expect(page.locator(f'.cards[data-status="IN_PROGRESS"] .card[data-case-key="{first}"]')).to_have_count(1)
    expect(page.locator("#live-status")).to_contain_text(f"{first} moved to in progress")
    page.goto(f"{console.url}/cases/{first}")
    expect(page.get_by_label("Status")).to_have_value("IN_PROGRESS")

    page.goto(f"{console.url}/board?project={world.project_key}")
    keyboard_card = page.locator(f'.card[data-case-key="{second}"]')
    keyboard_card.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator(f'.cards[data-status="CLOSED"] .card[data-case-key="{second}"]')).to_have_count(1)
    expect(page.locator("#live-status")).to_contain_text(f"{second} moved to closed")
    page.goto(f"{console.url}/cases/{second}")
    expect(page.get_by_label("Status")).to_have_value("CLOSED")


def test_upload_and_live_update_from_another_session(
    console: ConsoleServer, browser: Browser, page: Page, tmp_path
) -> None:  # noqa: ANN001
    world = console.new_world()
    shots = screenshot_dir()
    colleague = console.add_person(world, "Colleague")
    _, key = new_case(console, world, "Shared case")
    sign_in(page, console.url, world.person.email)
    page.goto(f"{console.url}/cases/{key}")

    # An attachment with upload progress; its lifecycle state is shown (no caseworker here: it stays uploaded).
    file = tmp_path / "notes.txt"
    file.write_text("line\n" * 20_000)
    page.get_by_label("File", exact=True).set_input_files(str(file))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#attachments")).to_contain_text("notes.txt")
    expect(page.locator("#attachments .badge")).to_have_text("uploaded")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")

    # Another person, another browser session: their comment and status change appear without a reload.
    other_context = new_context(browser)
    other = other_context.new_page()
    sign_in(other, console.url, colleague.email)
    other.goto(f"{console.url}/cases/{key}")
    other.get_by_label("Comment (Markdown)").fill("Looking at it *now*")
    other.get_by_role("button", name="Comment", exact=True).click()
    expect(other.locator("#timeline .comment .markdown em")).to_have_text("now")
    other.wait_for_timeout(500)  # its own live refresh of the comment lands first
    other.get_by_label("Status").select_option("IN_PROGRESS")
    expect(other.locator("#timeline")).to_contain_text("status open → in progress")
    expect(page.locator("#timeline .comment .markdown em")).to_have_text("now", timeout=20_000)
    expect(page.get_by_label("Status")).to_have_value("IN_PROGRESS", timeout=20_000)
    expect(page.locator("#live-status")).to_contain_text(f"{key} was updated")
    other_context.close()
    check_page(page, "case-live", shots)


def test_sign_out_ends_the_session(console: ConsoleServer, browser: Browser) -> None:
    world = console.new_world()
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, console.url, world.person.email)
    cookie = next(c for c in context.cookies() if c["name"] == "casem_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/sign-in$"))
    # The old cookie, put back, opens nothing: the session row is gone.
    context.add_cookies([{**cookie}])  # type: ignore[list-item]
    page.goto(f"{console.url}/cases")
    expect(page).to_have_url(re.compile(r".*/sign-in\?next=%2Fcases$"))
    context.close()


def test_settings_analytics_and_a_forged_form(console: ConsoleServer, page: Page) -> None:
    world = console.new_world()
    shots = screenshot_dir()
    _, key = new_case(console, world, "Forge target", priority="P1")
    _, other_key = new_case(console, world, "Another", priority="P3")
    sign_in(page, console.url, world.person.email)
    page.goto(f"{console.url}/cases/{other_key}")
    page.get_by_label("Status").select_option("CLOSED")
    expect(page.locator("#timeline")).to_contain_text("status open → closed")

    page.goto(f"{console.url}/analytics")
    expect(page.locator("#chart-flow canvas")).to_have_count(1)
    expect(page.locator("#chart-mttr canvas")).to_have_count(1)
    check_page(page, "analytics", shots)

    page.goto(f"{console.url}/settings/projects")
    check_page(page, "settings-projects", shots)
    page.get_by_label("Key (letters, e.g. OPS)").fill("OPS")
    page.get_by_label("Name", exact=True).fill("Operations")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#projects-table")).to_contain_text("Operations")

    page.goto(f"{console.url}/settings/people")
    page.get_by_label("E-mail").fill(f"new-{world.project_key.lower()}@example.com")
    page.get_by_label("Name", exact=True).fill("New Person")
    page.get_by_label("Console password (12 characters or more; leave empty to set later)").fill(
        "a long enough pass phrase"
    )
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#people-table")).to_contain_text("New Person")
    check_page(page, "settings-people", shots)

    page.goto(f"{console.url}/settings/keys")
    page.get_by_label("Name", exact=True).fill("ci key")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#issued-key .secret")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
    check_page(page, "settings-keys", shots)
    page.get_by_role("button", name=re.compile(r"Revoke ci key")).click()
    expect(page.locator("#keys-table")).to_contain_text("revoked")

    page.goto(f"{console.url}/settings/configuration")  # the former single page: now the first of four
    expect(page).to_have_url(f"{console.url}/settings/case-types")
    check_page(page, "settings-case-types-empty", shots)

    page.goto(f"{console.url}/cases/NOPE-1")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    check_page(page, "not-found", shots)

    # A page of another site posts a form at the console: refused, the case stays open.
    page.set_content(
        f'<form method="post" action="{console.url}/cases/{key}/status"><input name="status" value="CLOSED">'
        "<button>go</button></form>"
    )
    page.get_by_role("button", name="go").click()
    page.wait_for_load_state()
    assert page.url.startswith(console.url)
    page.goto(f"{console.url}/cases/{key}")
    expect(page.get_by_label("Status")).to_have_value("OPEN")


def test_on_call_pages_acknowledge_then_resolve(console: ConsoleServer, page: Page) -> None:
    from tests.console.oncall_world import TIME_ZONE, build_on_call

    world = console.new_world()
    oc = build_on_call(console, world, pages_to_open=2)
    shots = screenshot_dir()
    sign_in(page, console.url, world.person.email)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="On-call").click()
    expect(page.get_by_role("heading", name="Who is on call now")).to_be_visible()
    row = page.locator(f'tr[data-team-id="{oc.team_id}"]')
    expect(row.locator(".on-call-now strong")).to_have_text(re.compile(f"^({oc.alice}|{oc.bob})$"))
    check_page(page, "on-call", shots)

    row.get_by_role("link", name=oc.schedule_name).click()
    expect(page.get_by_role("heading", name=oc.schedule_name)).to_be_visible()
    expect(page.locator("#schedule-zone")).to_contain_text(TIME_ZONE)
    expect(page.locator(".tl-final .tl-block.now")).to_have_count(1)
    expect(page.locator("#on-call-now strong")).to_have_text(re.compile(f"^({oc.alice}|{oc.bob})$"))
    check_page(page, "on-call-schedule", shots)

    page.goto(f"{console.url}/on-call/pages")
    first = page.locator(f"#page-{oc.page_ids[0]}")
    expect(page.locator("tr.page-row")).to_have_count(2)
    check_page(page, "on-call-pages", shots)
    # Keyboard: focus the button and press Enter; the row changes in place and keeps the focus.
    first.get_by_role("button", name=f"Acknowledge {oc.page_keys[0]}").focus()
    page.keyboard.press("Enter")
    expect(first.locator(".page-status")).to_contain_text("Acknowledged")
    expect(page.locator("#flash")).to_contain_text(f"{oc.page_keys[0]} acknowledged")
    expect(first.get_by_role("button", name=f"Resolve {oc.page_keys[0]}")).to_be_focused()
    first.get_by_role("button", name=f"Resolve {oc.page_keys[0]}").click()
    expect(first.locator(".page-status")).to_contain_text("Resolved")
    expect(first.get_by_role("button")).to_have_count(0)
    expect(page.locator("#flash")).to_contain_text(f"{oc.page_keys[0]} resolved")
    # The status filter: only the other page is still triggered.
    page.get_by_label("Status").select_option("triggered")
    expect(page.locator("tr.page-row")).to_have_count(1)
    expect(page.locator(f"#page-{oc.page_ids[1]}")).to_be_visible()
    page.get_by_label("Status").select_option("")
    expect(page.locator("tr.page-row")).to_have_count(2)
    check_page(page, "on-call-pages-after", shots)
    # Dark theme, phone width: the timeline again.
    page.goto(f"{console.url}/on-call/schedules/{oc.schedule_id}")
    page.locator("#theme-toggle").click()
    check_page(page, "on-call-schedule-dark", shots)
    page.locator("#theme-toggle").click()
