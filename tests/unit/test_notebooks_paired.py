"""Each notebook's .py (reviewed, diffed) and .ipynb (opened, executed in CI) say the same thing."""

from __future__ import annotations

import jupytext
import pytest

from tests.conftest import ROOT

PAIRS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def test_there_are_notebooks():
    assert len(PAIRS) >= 3, PAIRS


@pytest.mark.parametrize("script", PAIRS, ids=lambda p: p.stem)
def test_pair_is_in_sync(script):
    notebook = script.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook} is missing: run `jupytext --sync {script}`"
    cells = [(c.cell_type, c.source) for c in jupytext.read(script).cells]
    paired = [(c.cell_type, c.source) for c in jupytext.read(notebook).cells]
    assert cells == paired, f"{script.name} and {notebook.name} differ: run `jupytext --sync {script}`"
    assert not any(c.get("outputs") for c in jupytext.read(notebook).cells), f"{notebook.name}: clear its outputs"
