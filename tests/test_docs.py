"""The documentation builds from the docstrings, and a broken docstring fails the build."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pdoc", reason="the docs build needs pdoc (pip install -e '.[docs]')")

ROOT = Path(__file__).resolve().parents[1]


def run(cmd, **env):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **env})


def test_docs_build_has_the_api_reference_and_the_tutorial(tmp_path):
    out = tmp_path / "site"
    proc = run(["bash", "docs/build.sh"], PYTHON=sys.executable, DOCS_OUT=str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "index.html").exists() and (out / "handgrad" / "nn.html").exists()
    linear = (out / "handgrad" / "ops" / "linear.html").read_text()
    assert "<br />\ndL/dW = dout^T x" in linear  # the course-notes formulas keep one line each
    tutorial = (out / "tutorial.html").read_text()
    assert r"$$\frac{\partial L}{\partial x} = \delta\, W" in tutorial and "handgrad sweep" in tutorial


BROKEN = {
    "math": ('r"""Broken math.\n\n.. math::\n\n    \\frac{a}{b\n"""\n', r"math '$$\\frac{a}{b$$': 1 unclosed '{'"),
    "inline math": ('"""The cost is $x^2 for one."""\n', "math '$x^2 for one.': $ is never closed"),
    "directive": ('def f():\n    """A typo.\n\n    .. mathh::\n\n        a = b\n    """\n',
                  "reStructuredText pdoc did not convert: '.. mathh::'"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_docstring_fails_the_build(tmp_path, case):
    source, message = BROKEN[case]
    (tmp_path / "broken.py").write_text(source)
    proc = run([sys.executable, "docs/build.py", "--out", str(tmp_path / "site"), "broken"], PYTHONPATH=str(tmp_path))
    assert proc.returncode == 1
    assert f"docs: broken.html: {message}" in proc.stderr, proc.stderr


def test_a_module_that_cannot_be_imported_fails_the_build(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text('"""A package."""\n')
    (package / "bad.py").write_text(textwrap.dedent('''\
        """Imports what is not there."""
        import a_module_that_is_not_installed
    '''))
    proc = run([sys.executable, "docs/build.py", "--out", str(tmp_path / "site"), "pkg"], PYTHONPATH=str(tmp_path))
    assert proc.returncode == 1
    assert "pkg.bad" in proc.stderr, proc.stderr


def test_a_pdoc_warning_fails_the_build(tmp_path):
    (tmp_path / "broken.py").write_text('"""Includes a file that is not there.\n\n.. include:: missing.md\n"""\n')
    proc = run([sys.executable, "docs/build.py", "--out", str(tmp_path / "site"), "broken"], PYTHONPATH=str(tmp_path))
    assert proc.returncode == 1
    assert "docs: warning: Cannot include 'missing.md'" in proc.stderr, proc.stderr
