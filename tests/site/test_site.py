"""The built site as a reader meets it: every page in headless Chromium, no network.

Runs after the build (make test): serves _build/html on localhost, loads every page,
and checks that it has no console errors, no error output, rendered math, loaded
figures, a Colab link to its .ipynb twin (notebook pages), and that the slider of an
embedded animation changes the figure. Screenshots go to _build/screenshots/.
"""
import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGES = sorted(str(p.relative_to(HTML)) for p in HTML.glob("*/*.html")
               if p.parent.name in ("chapters", "solutions", "exercises")) + ["intro.html",
                                                                             "references.html"]
# Chromium flags for a machine with no network: no background calls that fail.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.skipif(not HTML.exists(), reason="build the site first (make book)"),
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium"),
]


@pytest.fixture(scope="module")
def site():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    # no network: anything not on localhost is refused, and must not be needed
    page.route(re.compile(r"^(?!http://127\.0\.0\.1).*"), lambda route: route.abort())
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(500)
    return page, errors


@pytest.mark.parametrize("name", PAGES)
def test_no_dollar_math_is_left_raw(name):
    """Math that a page writes as $...$, in its text or in a sentence a cell
    generates (Markdown outputs are read as MyST: nb_render_markdown_format),
    reaches the reader as math, not as dollars. Code, its printed output and
    the math itself are left out; text in collapsed dropdowns is included."""
    from bs4 import BeautifulSoup
    main = BeautifulSoup((HTML / name).read_text(), "html.parser").find("main")
    for tag in main.select("pre, code, .math, script, style"):
        tag.decompose()
    raw = re.findall(r"\$[A-Za-z\\][^$\n]{0,30}\$?", main.get_text(" "))
    assert not raw, f"raw dollar math: {raw[:3]}"


@pytest.mark.parametrize("name", PAGES)
def test_page(browser, site, name):
    page, errors = open_page(browser, f"{site}/{name}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / (name.replace("/", "_").removesuffix(".html") + ".png")),
                    full_page=True)
    text = page.inner_text("main")
    assert not errors, f"console errors: {errors}"
    assert "Traceback" not in text and page.locator(".output.error, .output.traceback").count() == 0
    source = (HTML / name).read_text()
    if re.search(r'class="math|\\\(|\\\[', source):
        assert page.locator("mjx-container").count() > 0, "math is not rendered"
    broken = page.evaluate("""[...document.querySelectorAll('main img')]
        .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src)""")
    assert not broken, f"images that did not load: {broken}"
    if name.split("/")[0] in ("chapters", "solutions", "exercises"):
        twin = ROOT / name.replace(".html", ".ipynb")
        if twin.exists():
            colab = page.locator("a[href*='colab.research.google.com']")
            assert colab.count() > 0, "no Colab launch link"
            href = colab.first.get_attribute("href")
            assert href.endswith(name.replace(".html", ".ipynb")), href
    page.close()


def test_embedded_animation_slider_changes_the_figure(browser, site):
    """Every embedded interactive figure (matplotlib's to_jshtml: frames in the
    page, no kernel, no network) responds to its slider. Screenshots of each
    figure at two slider positions go to _build/screenshots/."""
    pages = [name for name in PAGES if 'class="anim-slider' in (HTML / name).read_text()]
    assert len(pages) >= 5, f"at least five pages need an interactive figure: {pages}"
    for name in pages:
        page, errors = open_page(browser, f"{site}/{name}")
        figures = page.locator(".animation")
        assert figures.count() > 0, f"{name}: no .animation block"
        for index in range(figures.count()):
            figure = figures.nth(index)
            slider, image = figure.locator("input.anim-slider"), figure.locator("img")
            figure.scroll_into_view_if_needed()
            stem = f"{name.replace('/', '_').removesuffix('.html')}_figure{index + 1}"
            shots = []
            for fraction in (0.15, 0.85):
                box = slider.bounding_box()
                page.mouse.click(box["x"] + box["width"] * fraction,
                                 box["y"] + box["height"] / 2)
                page.wait_for_timeout(300)
                shots.append(image.get_attribute("src"))
                figure.screenshot(path=str(SHOTS / f"{stem}_at{int(fraction * 100)}.png"))
            assert shots[0] != shots[1], f"{name}, figure {index + 1}: the slider did not change it"
        assert not errors, f"{name}: console errors {errors}"
        page.close()
