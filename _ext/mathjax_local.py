"""Serve MathJax from the book itself, fetched from npm at the first build.

A reader of the site may be offline, so the pages must not load MathJax from a
CDN. Instead of committing 2 MB of MathJax, the build fetches the npm package
once (`npm pack`, into a cache folder outside the repository), unpacks the
parts the pages need (the combined tex-mml-chtml component, the TeX extensions
it autoloads, the CHTML fonts) into _build/mathjax/, and adds that folder to
html_static_path: the site then contains mathjax/tex-mml-chtml.js, which
`mathjax_path` in _config.yml names.

Set DROPOUT_MATHJAX_TGZ to a downloaded mathjax-3.2.2.tgz to build without npm.
"""
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from sphinx.errors import ExtensionError

VERSION = "3.2.2"
WANTED = ("es5/tex-mml-chtml.js", "es5/input/tex/extensions/",
          "es5/output/chtml/fonts/woff-v2/", "LICENSE")


def cache_folder():
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dropout-chapter"


def fetch_tarball():
    """The npm tarball of mathjax@VERSION: from DROPOUT_MATHJAX_TGZ, the
    cache, or `npm pack` (which needs npm and the npm registry)."""
    given = os.environ.get("DROPOUT_MATHJAX_TGZ")
    if given:
        return Path(given)
    cache = cache_folder()
    tarball = cache / f"mathjax-{VERSION}.tgz"
    if tarball.exists():
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise ExtensionError(
            "The book serves MathJax itself and fetches it with npm at the first "
            "build, but npm is not installed: install Node.js (e.g. apt-get install "
            f"npm), or download mathjax-{VERSION}.tgz from the npm registry and set "
            "DROPOUT_MATHJAX_TGZ to its path.")
    cache.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([npm, "pack", f"mathjax@{VERSION}", "--silent"], cwd=cache,
                         capture_output=True, text=True, timeout=300)
    if run.returncode or not tarball.exists():
        why = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExtensionError(
            f"npm could not fetch mathjax@{VERSION} ({why}). The first build needs "
            "the npm registry; or set DROPOUT_MATHJAX_TGZ to a downloaded tarball.")
    return tarball


def unpack(tarball, target):
    """Unpack the WANTED parts of the tarball into target/mathjax/."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            name = member.name.removeprefix("package/")
            if not member.isfile() or not name.startswith(WANTED):
                continue
            path = partial / "mathjax" / name.removeprefix("es5/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.extractfile(member).read())
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def add_mathjax(app, config):
    target = Path(app.outdir).parent / "mathjax"
    if not (target / "mathjax" / "tex-mml-chtml.js").exists():
        unpack(fetch_tarball(), target)
    config.html_static_path.append(str(target))


def setup(app):
    app.connect("config-inited", add_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
