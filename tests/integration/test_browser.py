"""The demo pages in real headless Chromium (Debian's package, driven by Playwright).

Nothing is downloaded: Playwright drives /usr/bin/chromium (never `playwright install`).
Screenshots go to test-output/browser/ (gitignored).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.colour_classifier import LABELS, photo
from tests.helpers import REPO_ROOT, FunctionServer

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "test-output" / "browser"
WAIT_MS = 15_000
LESSON_FORM = {"cylinders": "8", "displacement": "300", "horsepower": "78", "weight": "3500",
               "acceleration": "20", "year": "76"}
WEIGHT_ERROR = "Out of bounds: weight, has value of: 50000, but should be between 1613 and 5140."

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="no Chromium installed (apt-get install chromium; .ci/run installs it)",
)

if CHROMIUM.is_file():
    from playwright.sync_api import BrowserContext, Page, expect, sync_playwright


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Chromium with a new, empty profile; no network beyond 127.0.0.1 is needed."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1000, "height": 800},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A tab that records CSP violations and script errors; the test fails on any."""
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    tab.on("console", lambda message: problems.append(message.text)
           if "Content Security Policy" in message.text else None)
    yield tab
    tab.close()
    assert problems == []


def screenshot(tab: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def fill_lesson_car(tab: Page) -> None:
    for name, value in LESSON_FORM.items():
        tab.fill(f"#f-{name}", value)
    tab.select_option("#f-origin", "1")


def test_mpg_form_is_built_from_the_manifest_and_predicts(mpg_server: FunctionServer,
                                                          page: Page) -> None:
    page.goto(mpg_server.url)
    expect(page.locator("#form")).to_be_visible(timeout=WAIT_MS)
    controls = page.locator("#fields input, #fields select")
    expect(controls).to_have_count(7)
    # Every control has exactly one label, and the hints carry the manifest's ranges and units.
    assert page.evaluate(
        "[...document.querySelectorAll('#fields input, #fields select')]"
        ".every((c) => c.labels.length === 1)"
    )
    expect(page.locator("#h-weight")).to_have_text("1613 to 5140")
    expect(page.locator("#u-weight")).to_have_text("lb")
    fill_lesson_car(page)
    page.press("#f-year", "Enter")  # keyboard submit
    expect(page.locator("#result .big")).to_have_text(re.compile(r"Predicted: \d+\.\d mpg"),
                                                      timeout=WAIT_MS)
    mpg = float(page.inner_text("#result .big").split()[1])
    assert 10 <= mpg <= 40
    screenshot(page, "mpg-prediction")


def test_mpg_server_errors_show_beside_their_field(mpg_server: FunctionServer, page: Page) -> None:
    page.goto(mpg_server.url)
    expect(page.locator("#form")).to_be_visible(timeout=WAIT_MS)
    fill_lesson_car(page)
    page.fill("#f-weight", "50000")
    page.click("#predict")
    expect(page.locator("#e-weight")).to_have_text(WEIGHT_ERROR, timeout=WAIT_MS)
    expect(page.locator("#f-weight")).to_have_attribute("aria-invalid", "true")
    assert "e-weight" in (page.get_attribute("#f-weight", "aria-describedby") or "")
    assert page.evaluate("document.activeElement.id") == "f-weight"
    expect(page.locator("#result")).to_be_empty()
    screenshot(page, "mpg-error")
    page.fill("#f-weight", "3500")  # the good request still works
    page.click("#predict")
    expect(page.locator("#result .big")).to_contain_text("Predicted:", timeout=WAIT_MS)
    expect(page.locator("#e-weight")).to_be_empty()


def test_image_page_classifies_a_chosen_and_a_dropped_photo(
        colour_image_server: FunctionServer, page: Page, tmp_path: Path) -> None:
    # The tests' colour classifier: three classes, so the page shows three bars.
    chosen = tmp_path / "red.jpg"
    chosen.write_bytes(photo("red"))
    page.goto(colour_image_server.url)
    expect(page.locator("#form")).to_be_visible(timeout=WAIT_MS)
    page.set_input_files("#image", chosen)
    expect(page.locator("#top")).to_have_text(
        re.compile(r"^Recognized red, probability \d+\.\d%$"), timeout=WAIT_MS)
    expect(page.locator("#result .bars li")).to_have_count(len(LABELS))
    expect(page.locator("#preview")).to_have_attribute("alt", "Preview of red.jpg")
    screenshot(page, "image-red")
    page.evaluate(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: "image/bmp"}));
            document.getElementById("drop").dispatchEvent(
                new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }""",
        [base64.b64encode(photo("blue", image_format="BMP")).decode(), "blue.bmp"],
    )
    expect(page.locator("#top")).to_contain_text("Recognized blue", timeout=WAIT_MS)


def test_page_shows_the_503_message_while_the_model_is_unavailable(
        tmp_path: Path, page: Page) -> None:
    env = {"IMAGE_MODEL_URI": str(tmp_path / "no-bucket" / "image"),
           "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    with FunctionServer("classify_image", env, tmp_path / "server.log") as server:
        page.goto(server.url)
        expect(page.locator("#status")).to_contain_text("Model unavailable", timeout=WAIT_MS)
        expect(page.locator("#form")).to_be_hidden()
        screenshot(page, "image-unavailable")
