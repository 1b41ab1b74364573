"""The gallery example end to end: the app on a real HTTP server, driven by headless Chromium.

Uses Debian's ``chromium`` (``scripts/test.sh`` installs it when it can) through Playwright, which
never downloads a browser here. Leaves a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path

import pytest
from PIL import Image
from werkzeug.serving import make_server

from examples.gallery.app import THUMBNAIL, Photo, create_app, documents, images

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def server(tmp_path):
    """The gallery on a free loopback port, in a thread; yields (base URL, app)."""
    app = create_app({"SECRET_KEY": "browser-test", "FS_BACKEND": "local", "FS_ROOT": str(tmp_path / "fs")})
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", app
    http.shutdown()
    thread.join(5)


@pytest.fixture
def page(tmp_path):
    """A page in a fresh headless Chromium profile; skipped when there is no Chromium."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM=/path/to/it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def make_png(path: Path, color: str, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, color).save(path, "PNG")
    return path


def test_gallery_in_a_browser(server, page, tmp_path):
    base, app = server
    ARTIFACTS.mkdir(exist_ok=True)
    statuses: dict[str, int] = {}
    page.on("response", lambda response: statuses.__setitem__(response.url, response.status))
    red = make_png(tmp_path / "red.png", "red", (640, 480))
    blue = make_png(tmp_path / "blue.png", "blue", (300, 500))

    page.goto(base + "/")
    assert "in-memory document store" in page.locator("#store-notice").inner_text()
    stylesheet = page.locator("link[rel=stylesheet]").get_attribute("href")
    assert stylesheet == "/fs/assets/static/gallery.css" == page.locator("#static-url").inner_text()
    assert statuses[base + stylesheet] == 200
    assert page.locator("#photos").evaluate("e => getComputedStyle(e).display") == "grid"  # the CSS applies

    # upload two images at once: both thumbnails load
    page.set_input_files("input[name=images]", [str(red), str(blue)])
    with page.expect_navigation():
        page.click("form[action='/photos'] button")
    assert page.locator(".messages li.ok").all_inner_texts() == ["Saved red.png.", "Saved blue.png."]
    thumbs = page.locator("#photos img")
    assert thumbs.count() == 2
    page.wait_for_function("[...document.querySelectorAll('#photos img')].every(i => i.complete)")
    for index in range(2):
        img = thumbs.nth(index)
        assert img.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [THUMBNAIL, THUMBNAIL]
        assert statuses[base + img.get_attribute("src")] == 200
    page.screenshot(path=str(ARTIFACTS / "gallery.png"), full_page=True)

    # open one: the full image and its metadata
    page.click("#photos a[title='red.png']")
    assert page.locator("h1").inner_text() == "red.png"
    assert page.locator("#full").evaluate("i => i.complete && i.naturalWidth") == 640
    with app.app_context():
        red_photo = Photo.objects.get(title="red.png")
        meta = images.metadata(red_photo.image.filename)
        red_files = red_photo.image.files
    table = page.locator("#metadata").inner_text()
    assert meta["checksum"] in table and f"({meta['size']} bytes)" in table and "image/png" in table
    page.screenshot(path=str(ARTIFACTS / "gallery-photo.png"), full_page=True)

    # delete it: gone from the grid and from the storage
    with page.expect_navigation():
        page.click("form[action$='/delete'] button")
    assert page.locator(".messages li.ok").all_inner_texts() == ["Deleted red.png."]
    assert page.locator("#photos img").count() == 1
    assert page.locator("#photos a").get_attribute("title") == "blue.png"
    with app.app_context():
        assert red_files and not any(images.exists(name) for name in red_files)
        assert Photo.objects.count() == 1

    # drop a file on the photo form: the drag-and-drop script sends it
    green = io.BytesIO()
    Image.new("RGB", (200, 200), "green").save(green, "PNG")
    with page.expect_navigation():
        page.evaluate(
            """bytes => {
                const zone = document.querySelector("form[action='/photos']");
                const data = new DataTransfer();
                data.items.add(new File([new Uint8Array(bytes)], "green.png", {type: "image/png"}));
                zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
            }""",
            list(green.getvalue()),
        )
    assert page.locator(".messages li.ok").all_inner_texts() == ["Saved green.png."]
    assert page.locator("#photos img").count() == 2

    # a forbidden type into the documents storage: the message, and nothing stored
    script = tmp_path / "install.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    page.set_input_files("input[name=documents]", str(script))
    with page.expect_navigation():
        page.click("form[action='/documents'] button")
    assert page.locator(".messages li.error").inner_text() == (
        "install.sh: this type of file is not accepted here (files of type 'sh' are not allowed in 'documents')."
    )
    assert statuses[base + "/documents"] == 415
    with app.app_context():
        assert list(documents.list_files()) == []
    page.screenshot(path=str(ARTIFACTS / "gallery-rejected.png"), full_page=True)
