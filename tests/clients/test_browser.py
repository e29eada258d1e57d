"""The web client in Debian's Chromium, driven by Playwright, against a real daphne process.

Two browser contexts are two people. The pages load through a proxy in front of the
server, so the test can cut the network under them and watch them reconnect.
"""

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.clients.conftest import ARTIFACTS, CuttingProxy
from tests.support.client import (
    HOST,
    PASSWORD,
    Server,
    create_room,
    join_room,
    post_message,
    register,
)

pytestmark = pytest.mark.clients

XSS = "<img src=x onerror=alert(1)>"
RECONNECT_TIMEOUT = 15_000  # ms: backoff grows while the proxy refuses


def open_page(browser: Any, url: str, problems: list[str]) -> Any:
    page = browser.new_context().new_page()
    page.on(
        "dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(url)
    return page


def say(page: Any, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")


def test_two_people_chat_live_in_the_browser_and_markup_stays_text(
    chromium: Any, server: Server, proxy: CuttingProxy
) -> None:
    from playwright.sync_api import expect

    problems: list[str] = []
    alice_account = register(server, "alice")  # she logs in; Bob registers in the page
    alice = open_page(chromium, f"{proxy.url}/", problems)
    bob = open_page(chromium, f"{proxy.url}/", problems)

    alice.fill("#username", "alice")
    alice.fill("#password", PASSWORD)
    alice.click("#login-button")
    expect(alice.locator("#me")).to_have_text("Alice")
    bob.fill("#username", "bob")
    bob.fill("#password", PASSWORD)
    bob.fill("#display-name", "Bob")
    bob.click("#register-button")
    expect(bob.locator("#me")).to_have_text("Bob")

    # Alice creates a room; Bob finds it by name and joins it.
    alice.fill("#new-room-name", "lobby")
    alice.click("#create-room-button")
    expect(alice.locator("#connection")).to_have_text("online")
    room_id = int(alice.locator("#room-list li.active").get_attribute("data-room-id"))
    bob.fill("#room-search", "lob")
    bob.locator("#room-list li", has_text="lobby").click()
    bob.click("#join-button")
    expect(bob.locator("#connection")).to_have_text("online")
    expect(alice.locator("#online")).to_contain_text("Bob")

    # Both ways, live.
    say(alice, "hello bob")
    expect(bob.locator("#messages .body")).to_have_text(["hello bob"])
    say(bob, "hi alice")
    expect(alice.locator("#messages .body")).to_have_text(["hello bob", "hi alice"])

    # Bob types: Alice sees it. Then his message shows as the characters he typed.
    bob.locator("#message-input").press_sequentially(XSS)
    expect(alice.locator("#typing")).to_have_text("Bob is typing…")
    bob.press("#message-input", "Enter")
    expect(alice.locator("#messages .body").last).to_have_text(XSS)
    expect(bob.locator("#messages .body").last).to_have_text(XSS)
    expect(alice.locator("#typing")).to_have_text("")
    for page in (alice, bob):
        expect(page.locator("#scroller img")).to_have_count(0)

    # Alice edits her message; Bob sees the new text.
    mine = alice.locator("#messages .message", has_text="hello bob")
    mine.hover()
    mine.locator("button.edit").click()
    say(alice, "hello bob, edited")
    expect(bob.locator("#messages .message").first).to_contain_text("(edited)")
    expect(bob.locator("#messages .body").first).to_have_text("hello bob, edited")

    # The network drops. Carol writes meanwhile and Bob sends while offline: once the
    # pages are back, both have everything, once each.
    carol = register(server, "carol")
    join_room(server, carol, room_id)
    proxy.cut(refuse=True)
    expect(bob.locator("#connection")).to_contain_text("offline")
    post_message(server, carol, room_id, "sent while you were away")
    say(bob, "queued while offline")
    expect(bob.locator("#outbox .body")).to_have_text(["queued while offline"])
    proxy.restore()
    expected = [
        "hello bob, edited",
        "hi alice",
        XSS,
        "sent while you were away",
        "queued while offline",
    ]
    for page in (alice, bob):
        expect(page.locator("#messages .body")).to_have_text(expected, timeout=RECONNECT_TIMEOUT)
        expect(page.locator("#connection")).to_have_text("online", timeout=RECONNECT_TIMEOUT)
    expect(bob.locator("#outbox .message")).to_have_count(0)

    # Bob deletes his own message (two clicks, no dialog); Alice sees it go.
    queued = bob.locator("#messages .message", has_text="queued while offline")
    queued.hover()
    queued.locator("button.delete").click()
    queued.locator("button.delete").click()
    expect(alice.locator("#messages .body").last).to_have_text("message deleted")

    ARTIFACTS.mkdir(exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "browser-chat.png"))

    # Unread counts in the list, and older history loaded on scrolling up.
    news = create_room(server, carol, "news")
    join_room(server, alice_account, news["id"])
    for number in range(60):
        post_message(server, carol, news["id"], f"news {number}")
    alice.fill("#room-search", "news")
    item = alice.locator("#room-list li", has_text="news")
    expect(item.locator(".unread")).to_have_text("60")
    item.click()
    expect(alice.locator("#messages .message")).to_have_count(50)
    expect(alice.locator("#messages .body").last).to_have_text("news 59")
    alice.locator("#scroller").evaluate("node => { node.scrollTop = 0; }")
    expect(alice.locator("#messages .message")).to_have_count(60)
    expect(alice.locator("#messages .body").first).to_have_text("news 0")
    expect(item.locator(".unread")).to_have_count(0)

    assert problems == []


def test_the_api_docs_list_the_operations_with_no_network_beyond_the_server(
    chromium: Any, server: Server
) -> None:
    from playwright.sync_api import expect

    problems: list[str] = []
    blocked: list[str] = []
    page = chromium.new_context().new_page()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def only_the_server(route: Any) -> None:
        if urlsplit(route.request.url).netloc == f"{HOST}:{server.port}":
            route.continue_()
        else:  # as on a machine without internet
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_the_server)
    page.goto(f"{server.http_url}/api/docs/")

    expect(page.locator(".opblock-summary-path", has_text="/api/v1/rooms/").first).to_be_visible()
    expect(page.locator(".opblock-tag").first).to_be_visible()
    assert page.locator(".opblock").count() > 20
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"))
    assert blocked == []
    assert problems == []


PHONE = {"width": 390, "height": 844}


def test_at_phone_width_the_room_list_and_the_chat_are_views_of_their_own(
    chromium: Any, server: Server
) -> None:
    from playwright.sync_api import expect

    problems: list[str] = []
    bob = register(server, "bob")
    news = create_room(server, bob, "news")
    post_message(server, bob, news["id"], "welcome to the news")
    register(server, "alice")
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(f"{server.http_url}/")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    expect(page.locator("#me")).to_have_text("Alice")

    # The room list is the whole screen; the chat is not squeezed beside it.
    expect(page.locator("#sidebar")).to_be_visible()
    assert page.locator("#sidebar").bounding_box()["width"] >= PHONE["width"] - 1
    expect(page.locator("#room")).to_be_hidden()

    # Opening a room shows the chat full width, with a way back.
    page.fill("#new-room-name", "pocket")
    page.click("#create-room-button")
    expect(page.locator("#connection")).to_have_text("online")
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.locator("#back-button")).to_be_visible()
    box = page.locator("#message-input").bounding_box()
    assert box["width"] >= 300, box
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    assert box["y"] + box["height"] <= PHONE["height"]  # on screen, not below the fold
    send = page.locator("#send-button").bounding_box()
    assert send["x"] + send["width"] <= PHONE["width"]

    page.locator("#message-input").tap()
    page.locator("#message-input").press_sequentially("typed on a phone")
    page.locator("#send-button").tap()
    expect(page.locator("#messages .body")).to_have_text(["typed on a phone"])
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-phone.png"))

    # Back to the list, which is the whole screen again; another room opens from it.
    page.locator("#back-button").tap()
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.locator("#room")).to_be_hidden()
    page.fill("#room-search", "news")
    page.locator("#room-list li", has_text="news").tap()
    expect(page.locator("#messages .body")).to_have_text(["welcome to the news"])
    expect(page.locator("#join-button")).to_be_visible()
    assert page.locator("#join-button").bounding_box()["width"] > 0
    expect(page.locator("#sidebar")).to_be_hidden()
    context.close()
    assert problems == []
