#!/usr/bin/env bash
# Make FashionMNIST available to the notebooks, offline when possible:
# the repository's data folder, Debian's dataset-fashion-mnist package, or a download.
set -euo pipefail
PY=${PY:-.venv/bin/python}
if $PY -m dropout_lab.data --no-download 2>/dev/null; then exit 0; fi
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "Installing Debian's dataset-fashion-mnist (the data, offline) ..."
    if ! $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; then
        $SUDO apt-get update -q >/dev/null 2>&1 || true
        $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
            || echo "apt-get could not install dataset-fashion-mnist; trying the download."
    fi
fi
$PY -m dropout_lab.data
