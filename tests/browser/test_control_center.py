"""A tutor's hour in the Control Center, in a real browser (headless Chromium) against the whole
cluster: John signs in with his token, opens the LIVE session from My Day, a student asks for
help and the tile and the queue show it, John answers it with a click, a refused action shows
the API's words, and a gateway that goes away and comes back loses nothing. Each state is
photographed under var/screenshots/."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from services.command.seed import LIVE_SESSION, TIME_ZONE, seed
from shared.readmodels.documents import SESSION, Session
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.browser.cluster import WebCluster, web_cluster
from tests.support.servers import NatsServer, PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.browser]
MERGE_PATCH_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]
WAIT_MS = 10_000
"""The longest any on-screen change is waited for (it comes within milliseconds)."""


def token(handle: str) -> str:
    person = demo_person(handle)
    return mint(Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE))


async def command(
    cluster: WebCluster, who: str, path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.command_port}") as http:
        return await http.post(
            path, headers={"Authorization": f"Bearer {token(who)}"}, json=body or {}
        )


async def shot(page: Page, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / f"{name}.png"))


def session_doc(cluster: WebCluster, session: str) -> Session:
    stored = cluster.read.get(SESSION, session)
    assert stored is not None
    return stored.doc


def tile(page: Page, name: str) -> Any:
    return page.get_by_role("listitem", name=name, exact=True)


async def test_a_tutor_follows_a_live_session_in_the_browser(
    pg: PostgresServer, nats_server: NatsServer, browser: BrowserContext, screenshots: Path
) -> None:
    async with web_cluster(pg, nats_server) as cluster:
        sessions = seed(cluster.centres, live_since=datetime.now(UTC) - timedelta(minutes=10))
        await cluster.caught_up()
        session = str(sessions[LIVE_SESSION])
        page = await browser.new_page()
        errors: list[str] = []  # uncaught exceptions in the page's script
        page.on("pageerror", lambda error: errors.append(str(error)))
        websockets: list[str] = []  # the URLs the page opened websockets on
        page.on("websocket", lambda socket: websockets.append(socket.url))

        # Signing in is done with the keyboard alone: the token field has the focus.
        response = await page.goto(cluster.page)
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        await expect(page.get_by_label("Your access token")).to_be_focused()
        john = token("john")
        await page.keyboard.type(john)
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("status")).to_have_text("Live", timeout=WAIT_MS)
        assert await page.evaluate("sessionStorage.getItem('tutorpulse.token')") == john
        assert "token" not in page.url
        # The token travels in a subprotocol, not in the websocket's URL (which proxies log):
        # outside development the gateway refuses a token there.
        assert websockets and all("token" not in url and john not in url for url in websockets)

        # My Day: today's sessions in the centre's time zone, with what waits.
        day = page.locator("#day-sessions")
        await expect(day.get_by_role("link", name=LIVE_SESSION)).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator("#my-day-date")).to_contain_text(TIME_ZONE)
        await expect(page.locator("#day-help li")).to_have_count(2)
        await shot(page, screenshots, "1-my-day")

        await day.get_by_role("link", name=LIVE_SESSION).focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name=LIVE_SESSION)).to_be_visible()
        await expect(page.locator("#tiles > li")).to_have_count(3, timeout=WAIT_MS)
        sydney = datetime.fromisoformat(session_doc(cluster, session).starts_at).astimezone(
            ZoneInfo(TIME_ZONE)
        )
        await expect(page.locator("#session-status")).to_contain_text(sydney.strftime("%H:%M"))
        await expect(page.locator("#session-timer")).to_contain_text("left")
        queue = page.locator("#queue > li")
        await expect(queue).to_have_count(2)
        michael = tile(page, "Michael Lee")
        await expect(michael).to_contain_text("No help asked")
        await shot(page, screenshots, "2-control-center")

        # Michael asks for help: his tile and the queue change, and it is announced; no tile
        # moves or changes size when it does.
        boxes = [await item.bounding_box() for item in await page.locator("#tiles > li").all()]
        sent = time.perf_counter()
        raised = await command(
            cluster,
            "michael",
            f"/api/v1/sessions/{session}/help-requests",
            {"priority": "URGENT", "message": "The loop never stops"},
        )
        assert raised.status_code == 201, raised.text
        await expect(michael).to_contain_text("Help urgent, pending", timeout=WAIT_MS)
        await expect(queue).to_have_count(3)
        on_screen = time.perf_counter() - sent
        assert [await item.bounding_box() for item in await page.locator("#tiles > li").all()] == (
            boxes
        )
        # Behind Alex's URGENT request (older), ahead of Jane's HIGH one.
        await expect(queue.nth(1)).to_contain_text("Michael Lee")
        await expect(queue.nth(1)).to_contain_text("The loop never stops")
        await expect(page.locator("#announcer")).to_contain_text("Michael Lee asks for help")
        print(f"help request on screen {on_screen * 1000:.0f} ms after it was sent")
        await shot(page, screenshots, "3-help-raised")

        # John answers it from the keyboard: the reply, then Enter.
        await page.get_by_label("Reply to Michael Lee").fill("Check the loop's condition")
        await page.get_by_label("Reply to Michael Lee").press("Enter")
        await expect(queue).to_have_count(2, timeout=WAIT_MS)
        await expect(michael).to_contain_text("No help asked")
        await expect(michael).to_contain_text("Attended")

        # One click for each: John teaches Michael, and marks him present.
        teach = page.get_by_role("button", name="Teach Michael Lee")
        await teach.click()
        await expect(teach).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        present = page.get_by_role("group", name="Attendance of Michael Lee").get_by_role(
            "button", name="Present"
        )
        await present.click()
        await expect(present).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        await expect(michael).to_contain_text("present")
        await shot(page, screenshots, "4-help-resolved")

        # Alex's request: seen, then John is with him.
        alex_help = queue.filter(has_text="Alex Thompson")
        await alex_help.get_by_role("button", name="Acknowledge").click()
        await expect(alex_help).to_contain_text("acknowledged", timeout=WAIT_MS)
        await alex_help.get_by_role("button", name="Start helping").click()
        await expect(tile(page, "Alex Thompson")).to_contain_text(
            "Help urgent, in progress", timeout=WAIT_MS
        )

        # An exercise from the catalogue for everyone, five more minutes, and a note.
        await page.get_by_label("Exercise to set for everyone").select_option(
            label="Semantic page (web-dev-basics)"
        )
        await page.get_by_role("button", name="Set for everyone").click()
        await expect(michael).to_contain_text("Semantic page: assigned, 0%", timeout=WAIT_MS)
        ends = datetime.fromisoformat(session_doc(cluster, session).ends_at)
        await page.get_by_role("button", name="Extend +5 min").click()
        later = (ends + timedelta(minutes=5)).astimezone(ZoneInfo(TIME_ZONE)).strftime("%H:%M")
        await expect(page.locator("#session-status")).to_contain_text(later, timeout=WAIT_MS)
        await page.get_by_role("button", name="Write a note about Michael Lee").click()
        note = page.get_by_role("dialog")
        await expect(page.get_by_label("What happened")).to_be_focused()
        await page.keyboard.type("Found the loop's off-by-one himself")
        await note.get_by_role("button", name="Save note").click()
        await expect(note).to_be_hidden(timeout=WAIT_MS)
        await expect(page.locator("#announcer")).to_contain_text("Note about Michael Lee: done")

        # A refused action shows the problem's detail: resolving without a reply.
        await page.get_by_role("button", name="Resolve Alex Thompson's request").click()
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("Resolve refused", timeout=WAIT_MS)
        await expect(alert).to_contain_text("response")
        await expect(queue).to_have_count(2)
        await shot(page, screenshots, "5-refused")
        # So is an exercise two students are already working on (409).
        await page.get_by_label("Exercise to set for everyone").select_option(
            label="Loops check (intro-programming)"
        )
        await page.get_by_role("button", name="Set for everyone").click()
        await expect(alert).to_contain_text("Set the exercise for everyone refused")
        await page.get_by_role("button", name="Dismiss the message").click()
        await expect(alert).to_be_hidden()

        # The gateway goes away: the page says so, and what happens meanwhile is not lost.
        await cluster.stop_gateway()
        await expect(page.get_by_role("status")).to_have_text("Reconnecting…", timeout=WAIT_MS)
        raised = await command(
            cluster,
            "michael",
            f"/api/v1/sessions/{session}/help-requests",
            {"priority": "LOW", "message": "Asked while the tutor was offline"},
        )
        assert raised.status_code == 201, raised.text
        extended = await command(cluster, "john", f"/api/v1/sessions/{session}/extend")
        assert extended.status_code == 200, extended.text
        await cluster.caught_up()
        await shot(page, screenshots, "6-offline")
        await cluster.start_gateway()
        await expect(page.get_by_role("status")).to_have_text("Live", timeout=WAIT_MS)
        await expect(queue).to_have_count(3, timeout=WAIT_MS)
        await expect(queue.last).to_contain_text("Asked while the tutor was offline")
        await expect(michael).to_contain_text("Help low, pending")
        await expect(teach).to_have_attribute("aria-pressed", "true")
        await shot(page, screenshots, "7-reconnected")

        # And it stays live after the reconnect: Jane's request, answered elsewhere, leaves.
        jane = next(
            s
            for s in session_doc(cluster, session).students.values()
            if s.student_id == str(demo_person("jane").id)
        )
        request = next(iter(jane.help_requests))
        resolved = await command(
            cluster,
            "john",
            f"/api/v1/sessions/{session}/help-requests/{request}/resolve",
            {"response": "Seen in person"},
        )
        assert resolved.status_code == 200, resolved.text
        await expect(queue).to_have_count(2, timeout=WAIT_MS)
        await expect(tile(page, "Jane Johnson")).to_contain_text("No help asked")
        # The page's merge patches are RFC 7386's (its appendix's examples).
        for target, patch, result in MERGE_PATCH_EXAMPLES:
            applied = await page.evaluate(
                "([t, p]) => import('./live.js').then((live) => live.mergePatch(t, p))",
                [target, patch],
            )
            assert applied == result, (target, patch)

        # On a tablet held upright the queue and attendance go under the tiles.
        await page.set_viewport_size({"width": 820, "height": 1180})
        await expect(page.locator("#queue")).to_be_visible()
        assert await page.evaluate("document.documentElement.scrollWidth") <= 820
        await shot(page, screenshots, "8-tablet")

        # Signing out forgets the token and closes the websocket.
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("Your access token")).to_be_focused()
        await expect(page.get_by_role("status")).to_have_text("Offline")
        assert await page.evaluate("sessionStorage.length") == 0
        assert errors == []
