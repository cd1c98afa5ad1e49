#!/usr/bin/env python3
"""Screenshots of the web page for the README, taken in headless Chromium (never drawn by hand).

Writes the demo collection (``nearindex.demo``) and a faked copy of one of its scenes (a
pasted patch, not in the collection), adds the collection to a new database, serves it with
``nearindex.web`` on a free loopback port, and saves 1280x800 PNGs of the Search page (the
faked copy's results), the Diff page (its diff with the original), Duplicates and Info.

Usage: python scripts/screenshots.py [--out docs/screenshots] [--folder DIR] [--chromium PATH]
Needs the ``web`` extra, Playwright (``pip install playwright``) and Debian's Chromium.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from playwright.sync_api import sync_playwright

import nearindex
from nearindex import synthetic
from nearindex.demo import write_demo_collection
from nearindex.web import create_app

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 800}
#: The demo scene that gets a faked copy (it has no edited copy in the collection).
FAKED_SEED = 9


def build_demo(folder: Path) -> tuple[Path, Path]:
    """The demo collection added to ``folder/db``, and a faked copy outside it; returns (db, faked)."""
    write_demo_collection(folder)
    faked = folder / "suspect-scene09.jpg"
    scene = synthetic.make_scene(FAKED_SEED)
    synthetic.write_image(faked, synthetic.paste_patch(scene, synthetic.make_texture(7), area=0.15))
    with nearindex.open(folder / "db") as database:
        database.add(folder / "collection")
    return folder / "db", faked


def serve(db: Path) -> tuple[uvicorn.Server, str]:
    """The web app on a free loopback port, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(db), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}/"


def wait_for_pictures(page: Any) -> None:
    """Until every image on the visible tab has loaded."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tab:not([hidden]) img')].every(i => i.complete && i.naturalWidth > 0)"
    )


def take(page: Any, url: str, faked: Path, out: Path) -> list[Path]:
    """The four screenshots; returns their paths."""
    shots = []

    def shot(name: str) -> None:
        wait_for_pictures(page)
        shots.append(out / f"{name}.png")
        page.screenshot(path=str(shots[-1]))

    page.goto(url)
    page.set_input_files("#search-file", str(faked))
    page.locator(".result").first.wait_for()
    shot("search")
    page.locator(".result a.diff-link").first.click()
    page.wait_for_function("() => document.querySelector('#diff-picture').naturalWidth > 0")
    shot("diff")
    page.goto(url + "#duplicates")
    page.locator(".group").first.wait_for()
    shot("duplicates")
    page.goto(url + "#info")
    page.locator("#info-table tbody tr").first.wait_for()
    shot("info")
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--folder", type=Path, default=None, help="Where the demo goes (default: a new temp dir).")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="nearindex-demo-"))
    args.out.mkdir(parents=True, exist_ok=True)
    db, faked = build_demo(folder)
    server, url = serve(db)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            shots = take(browser.new_page(viewport=VIEWPORT), url, faked, args.out)
            browser.close()
    finally:
        server.should_exit = True
    for path in shots:
        print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


if __name__ == "__main__":
    main()
