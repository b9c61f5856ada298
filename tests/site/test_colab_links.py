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
