"""Settings, on-call pages and merges in real headless Chromium.

Each settings kind is created, edited and deleted through its forms (a refused value shows its message at the
field); the on-call pages list follows pages triggered and acknowledged elsewhere without a reload; a merge
started from the case page shows its progress. Every page is checked with axe-core and photographed at
1440×900 and 390×844 (var/console-screenshots, or CASEM_SCREENSHOT_DIR).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.browser import check_page, sign_in
from tests.console.server import ConsoleServer, new_case
from tests.support.screenshots import screenshot_dir


def row(page: Page, table: str, text: str) -> Locator:
    return page.locator(f"{table} tbody tr", has_text=text)


class Choose(str):
    """A field's value picked from its options (a select), not typed."""


Label = str | re.Pattern[str]


def submit(form: Locator, fields: dict[Label, str], button: str) -> None:
    """Fill each labelled field of `form` (typed, or chosen for a `Choose` value), then press `button`."""
    for label, value in fields.items():
        field = form.get_by_label(label)
        if isinstance(value, Choose):
            field.select_option(str(value))
        else:
            field.fill(value)
    form.get_by_role("button", name=button).click()


def edit(page: Page, table: str, text: str, summary: str) -> Locator:
    """Open the row's edit form; answers the row."""
    found = row(page, table, text)
    found.get_by_text(summary, exact=True).click()
    return found


def test_case_types_and_custom_attributes(console: ConsoleServer, page: Page) -> None:
    world = console.new_world()
    shots = screenshot_dir()
    sign_in(page, console.url, world.person.email)
    page.goto(f"{console.url}/settings/case-types")
    submit(page.locator("#type-new"), {"Name": "Security", "Emoji (one, optional)": "🔒"}, "Create case type")
    expect(row(page, "#case-types-table", "Security")).to_have_count(1)

    edited = edit(page, "#case-types-table", "Security", "Edit Security")
    submit(edited, {"Description": "Breaches and leaks"}, "Save Security")
    expect(row(page, "#case-types-table", "Security")).to_contain_text("Breaches and leaks")

    key_label = "Key (lower-case letters, digits and _, e.g. impact)"
    attribute = {"Case type": Choose("Security"), key_label: "impact", "Name": "Impact"}
    submit(
        page.locator("#attr-new"),
        {
            **attribute,
            "Kind of value": Choose("SELECT"),
            "Options of a select (separated by commas)": "low, high",
        },
        "Create attribute",
    )
    expect(row(page, "#attributes-table", "Impact")).to_contain_text("select: low, high")
    # The same key again: the message sits under the key field, which says it is invalid.
    submit(page.locator("#attr-new"), {**attribute, "Name": "Impact again"}, "Create attribute")
    key_field = page.locator("#attr-new-key")
    expect(key_field).to_have_attribute("aria-invalid", "true")
    expect(key_field).to_be_focused()  # the page opens at the field to fix
    expect(page.locator("#attr-new-key-error")).to_contain_text("already has a custom attribute with key 'impact'")
    expect(page.locator("#attr-new-display_name")).to_have_value("Impact again")
    check_page(page, "settings-case-types-error", shots)

    attr = edit(page, "#attributes-table", "Impact", "Edit Impact")
    submit(attr, {"Name": "Business impact", "Options (separated by commas)": "low, medium, high"}, "Save Impact")
    expect(row(page, "#attributes-table", "Business impact")).to_contain_text("low, medium, high")
    check_page(page, "settings-case-types", shots)
    row(page, "#attributes-table", "Business impact").get_by_role("button", name="Delete Business impact").click()
    expect(page.locator("#attributes-table")).to_contain_text("None yet.")
    row(page, "#case-types-table", "Security").get_by_role("button", name="Delete Security").click()
    expect(row(page, "#case-types-table", "Security")).to_have_count(0)


def test_automation_rules_sla_and_reminders(console: ConsoleServer, page: Page) -> None:
    world = console.new_world()
    shots = screenshot_dir()
    sign_in(page, console.url, world.person.email)
    page.goto(f"{console.url}/settings/automation")
    section = page.locator(f'section[data-project-key="{world.project_key}"]')
    section.get_by_text(f"New automation rule in {world.project_key}").click()
    submit(
        section.locator(f"#rule-new-{world.project_id}"),
        {
            "Name": "Urgent on create",
            "When": Choose("CASE_CREATED"),
            "Then": Choose("SET_PRIORITY"),
            re.compile(r"^With"): "P9",
        },
        "Create rule",
    )
    # Refused by the rule's validation: the message under the value field, the form still open and filled.
    error = page.locator(f"#rule-new-{world.project_id}-action_value-error")
    expect(error).to_contain_text("priority must be one of")
    check_page(page, "settings-automation-error", shots)
    page.locator(f"#rule-new-{world.project_id}-action_value").fill("P1")
    page.locator(f"#rule-new-{world.project_id}").get_by_role("button", name="Create rule").click()
    expect(row(page, ".automation-rules", "Urgent on create")).to_contain_text("set priority")

    rule = edit(page, ".automation-rules", "Urgent on create", "Edit Urgent on create")
    submit(
        rule,
        {
            "Name": "Comment when closed",
            "When": Choose("STATUS_TRANSITIONED"),
            "To status (for status transitioned)": Choose("CLOSED"),
            "Then": Choose("ADD_COMMENT"),
            re.compile(r"^With"): "Closed: thanks!",
            "State": Choose("DISABLED"),
        },
        "Save Urgent on create",
    )
    changed = row(page, ".automation-rules", "Comment when closed")
    expect(changed).to_contain_text("status transitioned → add comment")
    expect(changed).to_contain_text("disabled")

    section = page.locator(f'section[data-project-key="{world.project_key}"]')
    section.get_by_label("P1 acknowledge within (seconds)").fill("900")
    section.get_by_label("P1 close within (seconds)").fill("86400")
    section.get_by_role("button", name=f"Save SLA of {world.project_key}").click()
    expect(page.get_by_label("P1 acknowledge within (seconds)")).to_have_value("900")
    page.get_by_label("P1 acknowledge within (seconds)").fill("600")
    page.get_by_role("button", name=f"Save SLA of {world.project_key}").click()
    expect(page.get_by_label("P1 acknowledge within (seconds)")).to_have_value("600")
    reminders = page.get_by_label(re.compile(r"^Remind this many seconds"))
    reminders.fill("7200, 0")
    page.get_by_role("button", name=f"Save reminders of {world.project_key}").click()
    expect(page.get_by_label(re.compile(r"^Remind this many seconds"))).to_have_value("7200, 0")
    check_page(page, "settings-automation", shots)

    # Cleared: the SLA targets emptied, the reminders emptied, the rule deleted.
    page.get_by_label("P1 acknowledge within (seconds)").fill("")
    page.get_by_label("P1 close within (seconds)").fill("")
    page.get_by_role("button", name=f"Save SLA of {world.project_key}").click()
    expect(page.get_by_label("P1 close within (seconds)")).to_have_value("")
    page.get_by_label(re.compile(r"^Remind this many seconds")).fill("")
    page.get_by_role("button", name=f"Save reminders of {world.project_key}").click()
    expect(page.get_by_label(re.compile(r"^Remind this many seconds"))).to_have_value("")
    row(page, ".automation-rules", "Comment when closed").get_by_role(
        "button", name="Delete Comment when closed"
    ).click()
    expect(page.locator(".automation-rules")).to_contain_text("None yet.")


def test_notification_rules_and_endpoints(console: ConsoleServer, page: Page) -> None:
    world = console.new_world()
    shots = screenshot_dir()
    sign_in(page, console.url, world.person.email)
    page.goto(f"{console.url}/settings/notifications")
    # An endpoint at an address of the local network: the outbound guard refuses it, at the address field.
    submit(
        page.locator("#endpoint-new"),
        {"Name": "ops hook", "Address (https://…)": "http://127.0.0.1:9/hook"},
        "Create endpoint",
    )
    expect(page.locator("#endpoint-new-url-error")).to_contain_text("url is refused")
    expect(page.locator("#endpoint-new-url")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#endpoint-new-url")).to_be_focused()
    check_page(page, "settings-notifications-error", shots)
    page.locator("#endpoint-new-url").fill("https://hooks.example.com/casem")
    page.locator("#endpoint-new").get_by_role("button", name="Create endpoint").click()
    expect(page.locator("#issued-endpoint .secret")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(row(page, "#endpoints-table", "ops hook")).to_contain_text("hooks.example.com/casem")

    section = page.locator(f'section[data-project-key="{world.project_key}"]')
    section.get_by_text(f"New notification rule in {world.project_key}").click()
    submit(
        section.locator(f"#notify-new-{world.project_id}"),
        {
            "When": Choose("CASE_CREATED"),
            "Send to": Choose("HTTP"),
            re.compile(r"^Address"): "ops hook",
            re.compile(r"^Only cases matching"): "priority:P1",
        },
        "Create notification rule",
    )
    created = row(page, ".notification-rules", "ops hook")
    expect(created).to_contain_text("priority:P1")

    rule = edit(page, ".notification-rules", "ops hook", "Edit rule for ops hook")
    rule.get_by_label("Enabled").uncheck()
    submit(rule, {"Send to": Choose("EMAIL"), re.compile(r"^Address"): "sre@example.com"}, "Save rule for ops hook")
    changed = row(page, ".notification-rules", "sre@example.com")
    expect(changed).to_contain_text("off")
    check_page(page, "settings-notifications", shots)
    changed.get_by_role("button", name="Delete rule for sre@example.com").click()
    expect(page.locator(".notification-rules")).to_contain_text("None yet.")
    row(page, "#endpoints-table", "ops hook").get_by_role("button", name="Delete ops hook").click()
    expect(page.locator("#endpoints-table")).to_contain_text("None yet.")


def test_maintenance_windows(console: ConsoleServer, page: Page) -> None:
    world = console.new_world()
    shots = screenshot_dir()
    sign_in(page, console.url, world.person.email)
    page.goto(f"{console.url}/settings/maintenance")
    submit(
        page.locator("#window-new"),
        {
            "Name": "DB upgrade",
            re.compile(r"^Cases it silences"): "service:db",
            "Starts (UTC)": "2030-01-01T22:00",
            "Ends (UTC)": "2029-12-31T22:00",
        },
        "Create window",
    )
    expect(page.locator("#window-new-end_at-error")).to_contain_text("must be after start_at")
    check_page(page, "settings-maintenance-error", shots)
    page.locator("#window-new-end_at").fill("2030-01-02T02:00")
    page.locator("#window-new").get_by_role("button", name="Create window").click()
    expect(row(page, "#windows-table", "DB upgrade")).to_contain_text("2030-01-01 22:00 → 2030-01-02 02:00")

    window = edit(page, "#windows-table", "DB upgrade", "Edit DB upgrade")
    submit(window, {"Name": "DB upgrade, longer", "Ends (UTC)": "2030-01-02T05:30"}, "Save DB upgrade")
    expect(row(page, "#windows-table", "DB upgrade, longer")).to_contain_text("2030-01-02 05:30")
    check_page(page, "settings-maintenance", shots)
    row(page, "#windows-table", "DB upgrade, longer").get_by_role("button", name="Delete DB upgrade, longer").click()
    expect(page.locator("#windows-table")).to_contain_text("None yet.")


def test_on_call_pages_follow_changes_made_elsewhere(console: ConsoleServer, page: Page) -> None:
    from casem.app.oncall import pages as paging
    from casem.app.oncall.directory import Directory
    from casem.topology.tenants import ON_CALL
    from tests.console.oncall_world import build_on_call

    world = console.new_world()
    oc = build_on_call(console, world, pages_to_open=1)
    shots = screenshot_dir()
    sign_in(page, console.url, world.person.email)
    page.goto(f"{console.url}/on-call/pages")
    expect(page.locator("tr.page-row")).to_have_count(1)
    page.wait_for_timeout(500)  # the page's live feed connects

    async def trigger() -> str:
        async with console.context.uow(ON_CALL) as uow, console.context.uow(read_only=True) as people:
            found, _ = await paging.create_page(
                uow,
                Directory(people, world.creds.org_id),
                world.creds.org_id,
                world.creds.user_id,
                paging.NewPage(
                    title="Queue backlog", urgency="low", target_type=paging.TEAM_ID, target_identifier=oc.team_id
                ),
            )
            await uow.commit()
            return found.id

    async def acknowledge(page_id: str) -> None:
        async with console.context.uow(ON_CALL) as uow:
            await paging.acknowledge_page(uow, world.creds.org_id, oc.bob_id, page_id)
            await uow.commit()

    # Triggered by the Paging API's use case (another service, another person): the row appears by itself.
    new_id = console.call(trigger())
    expect(page.locator(f"#page-{new_id}")).to_contain_text("Queue backlog", timeout=20_000)
    expect(page.locator("tr.page-row")).to_have_count(2)
    expect(page.locator("#page-count")).to_contain_text("2 pages")
    expect(page.locator("#live-status")).to_contain_text("triggered")
    # Acknowledged elsewhere: its status changes in place, its Acknowledge button goes.
    console.call(acknowledge(oc.page_ids[0]))
    first = page.locator(f"#page-{oc.page_ids[0]}")
    expect(first.locator(".page-status")).to_contain_text("Acknowledged", timeout=20_000)
    expect(first.get_by_role("button", name=re.compile("^Acknowledge"))).to_have_count(0)
    check_page(page, "on-call-pages-live", shots)
    # A filtered list keeps its filter when it refreshes: only triggered pages.
    page.get_by_label("Status").select_option("triggered")
    expect(page.locator("tr.page-row")).to_have_count(1)
    console.call(acknowledge(new_id))
    expect(page.locator("tr.page-row")).to_have_count(0, timeout=20_000)
    expect(page.locator("#page-results")).to_contain_text("No page is triggered")


def _start_caseworker(console: ConsoleServer) -> tuple[Any, Any]:
    """A caseworker on the running Temporal server, in the console's loop, on a task queue of its own."""
    from temporalio.client import Client

    from casem.adapters.workflows.client import TemporalCaseworker
    from casem.services.caseworker.worker import build_worker
    from tests.backends import engine_address

    address = engine_address("temporal")  # skips without a Temporal server

    async def start() -> tuple[Any, Any]:
        client = await Client.connect(address)
        queue = f"console-merge-{uuid.uuid4().hex[:8]}"
        worker = build_worker(client, console.context, console.app.state.blobs, task_queue=queue)
        task = asyncio.create_task(worker.run())
        console.app.state.caseworker = TemporalCaseworker(client, task_queue=queue)
        return worker, task

    return console.call(start())


@pytest.mark.temporal
def test_merge_from_the_case_page_shows_its_progress(console: ConsoleServer, page: Page) -> None:
    world = console.new_world()
    shots = screenshot_dir()
    _, primary = new_case(console, world, "Login failures")
    duplicates = [new_case(console, world, f"Login failures again #{n}")[1] for n in range(3)]
    worker, task = _start_caseworker(console)
    try:
        sign_in(page, console.url, world.person.email)
        page.goto(f"{console.url}/cases/{primary}")
        page.get_by_text("Merge duplicates into this case").click()
        page.get_by_label("Duplicate case keys").fill(" ".join(duplicates))
        page.get_by_role("button", name="Merge", exact=True).click()
        merge = page.locator("li.merge")
        # Shown at once, with its progress bar out of three; it runs to completion without a reload.
        expect(merge).to_contain_text(f"Merge of {', '.join(duplicates)}")
        expect(merge.get_by_role("progressbar", name="Merge progress")).to_have_attribute("max", "3")
        check_page(page, "case-merge-started", shots)
        expect(merge).to_have_attribute("data-merge-status", "COMPLETED", timeout=60_000)
        expect(merge.get_by_role("progressbar", name="Merge progress")).to_have_attribute("value", "3")
        expect(page.locator("#live-status")).to_contain_text(f"{primary} was updated")
        # The duplicates' cells copied into the primary say which case they came from.
        for duplicate in duplicates:
            expect(page.locator(".cell .origin").filter(has_text=f"from {duplicate}")).not_to_have_count(0)
        check_page(page, "case-merge-done", shots)
        page.goto(f"{console.url}/cases/{duplicates[0]}")
        expect(page.locator(".badge.merged")).to_contain_text(f"merged into {primary}")
    finally:
        console.app.state.caseworker = None
        console.call(worker.shutdown())
        console.call(asyncio.wait_for(task, 30))
