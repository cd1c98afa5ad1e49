"""The web page end to end: a real uvicorn server and Debian's Chromium, headless, driven by Playwright.

Skipped, saying why, where Playwright or ``/usr/bin/chromium`` is missing (``.ci/run``
installs Chromium when it can). Playwright's own browser downloads are not used.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from nearindex.web import create_app

from .conftest import Collection
from .test_web import FAKED_SEED, fill_database, write_faked_copy

CHROMIUM = Path("/usr/bin/chromium")
#: Chromium flags for a root user on a machine without a display or outside network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
TIMEOUT_MS = 30_000

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
if not CHROMIUM.exists():
    pytest.skip("no chromium at /usr/bin/chromium: apt-get install chromium", allow_module_level=True)


def start_server(db_path: Path) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serve the app on a free loopback port in a thread; returns the server, the thread and the URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(db_path), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def base_url(collection: Collection, db_path: Path) -> Iterator[str]:
    fill_database(db_path, collection)
    server, thread, url = start_server(db_path)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        opened = browser.new_page(viewport={"width": 1280, "height": 800})
        opened.set_default_timeout(TIMEOUT_MS)
        yield opened
        browser.close()


def test_search_with_a_faked_copy_then_see_its_diff(
    base_url: str, page: Any, collection: Collection, tmp_path: Path
) -> None:
    faked = write_faked_copy(tmp_path / "faked.jpg")
    page.goto(base_url)
    page.set_input_files("#search-file", str(faked))
    first = page.locator(".result").first
    first.wait_for()
    assert first.locator(".path").first.inner_text() == str(collection.originals[FAKED_SEED])
    assert first.locator(".badge.edited").is_visible()
    first.locator("img").first.evaluate("img => img.decode()")
    assert first.locator("img").first.evaluate("img => img.naturalWidth") > 0, "the thumbnail loaded"
    first.locator("a.diff-link").click()
    page.locator("#diff-result").wait_for()
    page.wait_for_function("() => document.querySelector('#diff-picture').naturalWidth > 0")
    assert page.locator("#diff-regions tbody tr").count() >= 1
    assert "faked.jpg" in page.locator("#diff-summary").inner_text()


def test_duplicates_info_and_a_stored_pair_diff(base_url: str, page: Any, collection: Collection) -> None:
    page.goto(base_url + "#duplicates")
    page.locator(".group").first.wait_for()
    assert page.locator(".group").count() >= len(collection.edits)
    page.locator(".group a.diff-link").first.click()
    page.wait_for_function("() => document.querySelector('#diff-picture').naturalWidth > 0")
    assert page.locator("#tab-diff").is_visible() and page.locator("#diff-a").input_value()
    page.goto(base_url + "#info")
    page.locator("#info-table tbody tr").first.wait_for()
    assert str(len(collection.all_files)) in page.locator("#info-table").inner_text()
    page.goto(base_url + "#diff?a=/etc/passwd&b=/etc/passwd")
    page.locator("#diff-status.error").wait_for()
    assert "not an image stored in this database" in page.locator("#diff-status").inner_text()
