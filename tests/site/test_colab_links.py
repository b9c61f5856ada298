"""The built pages' Colab buttons open the converted notebooks, at the repository
URL and branch of _config.yml (the one place that names them). Runs after the
build (make test); reads the HTML, needs no browser."""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks  # noqa: E402

pytestmark = pytest.mark.skipif(not HTML.exists(), reason="build the site first (make book)")


@pytest.mark.parametrize("md", notebooks.notebooks(), ids=lambda p: p.stem)
def test_colab_button_opens_the_converted_notebook_from_the_configured_repository(md):
    page = md.relative_to(ROOT).with_suffix("")
    html = (HTML / page.with_suffix(".html")).read_text()
    org_repo = notebooks.repository_url().removeprefix("https://github.com/")
    expected = (f"https://colab.research.google.com/github/{org_repo}/blob/"
                f"{notebooks.branch()}/{page.as_posix()}.ipynb")
    assert re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', html) == [expected]
    assert f'href="{notebooks.repository_url()}"' in html  # the repository button: same URL


def test_links_in_the_colab_notebooks_land_on_pages_and_anchors_of_the_site():
    import nbformat
    site, checked = notebooks.site_url(), 0
    for md in notebooks.notebooks():
        for cell in nbformat.read(md.with_suffix(".ipynb"), as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            for link in re.findall(r"\]\((" + re.escape(site) + r"[^)\s]*)\)", cell.source):
                page, _, anchor = link.removeprefix(site).partition("#")
                html = (HTML / page).read_text()
                assert not anchor or f'id="{anchor}"' in html, f"{md.name}: {link}"
                checked += 1
    assert checked > 100
