"""Shared fixtures: the documentation site, built once per test session."""
import os, tempfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='session')
def docs_site():
    "The built site: $TABSYNTH_DOCS_DIR when the test command has just built it, else a fresh build in a temporary folder."
    given = os.environ.get('TABSYNTH_DOCS_DIR')
    if given:
        site = (ROOT/given).resolve()
        assert (site/'index.html').is_file(), f"TABSYNTH_DOCS_DIR={given} has no index.html: build it with `tabsynth docs`"
        return site
    from tabsynth.cli import build_docs
    cwd = os.getcwd()
    os.chdir(ROOT)
    try: return build_docs(out=Path(tempfile.mkdtemp())/'site', readme=False, quiet=True)
    finally: os.chdir(cwd)
