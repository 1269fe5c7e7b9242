"""Build the API reference and the tutorial with pdoc, failing on any problem.

    python docs/build.py [--out DIR] [MODULE ...]     (default: handgrad, into docs/_build)

Docstrings are read as numpydoc/reStructuredText (``.. math::`` and
``:math:`` become MathJax) and otherwise as Markdown with every line break
kept, so the course-notes formulas written one per line stay one per line.
The build fails (exit 1, one line per problem) when

- pdoc or a module import emits a warning (a module that cannot be imported,
  an ``.. include::`` that cannot be read, ...);
- a page still shows a reStructuredText directive or role (``.. name::``,
  ``:name:`...```), i.e. one pdoc does not know or could not parse;
- the math MathJax would typeset on a page is broken: a ``$$``, ``$``,
  ``\\(`` or ``\\[`` left open, unbalanced braces, ``\\begin``/``\\end`` or
  ``\\left``/``\\right`` that do not pair up, an empty formula.

The tutorial (docs/tutorial.md) becomes the page ``tutorial.html``.
"""
from __future__ import annotations

import argparse
import html.parser
import re
import sys
import tempfile
import warnings
from pathlib import Path

import pdoc
import pdoc.render
import pdoc.render_helpers

DOCS = Path(__file__).resolve().parent


class _PageText(html.parser.HTMLParser):
    """The text of a page as MathJax sees it: outside code, scripts and styles."""

    SKIP = {"code", "pre", "script", "style", "textarea"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


_DISPLAY = re.compile(r"\$\$(.*?)\$\$|\\\[(.*?)\\\]", re.S)
_INLINE = re.compile(r"\$(.*?)\$|\\\((.*?)\\\)", re.S)
_RST_LEFT = re.compile(r"(?m)^\s*\.\.\s+[\w-]+::|:[\w-]+:`")


def _excerpt(text: str, length: int) -> str:
    return " ".join(text[:length].split())


def _formula_problem(tex: str) -> str | None:
    if not tex.strip():
        return "an empty formula"
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return "a '}' with no '{'"
    if depth:
        return f"{depth} unclosed '{{'"
    if re.findall(r"\\begin\{(\w+\*?)\}", tex) != re.findall(r"\\end\{(\w+\*?)\}", tex):
        return "\\begin{...} and \\end{...} do not pair up"
    if len(re.findall(r"\\left\b", tex)) != len(re.findall(r"\\right\b", tex)):
        return "\\left and \\right do not pair up"
    return None


def page_problems(page: str) -> list[str]:
    """What is wrong with the docstrings rendered into one HTML page."""
    parser = _PageText()
    parser.feed(page)
    text = "".join(parser.parts)
    problems = [f"reStructuredText pdoc did not convert: {m.group(0).strip()!r}" for m in _RST_LEFT.finditer(text)]
    for pattern in (_DISPLAY, _INLINE):
        for m in pattern.finditer(text):
            tex = m.group(1) if m.group(1) is not None else m.group(2)
            problem = _formula_problem(tex)
            if problem:
                problems.append(f"math {_excerpt(m.group(0), 80)!r}: {problem}")
        text = pattern.sub(" ", text)
    for opener in ("$", "\\(", "\\["):
        if opener in text:
            at = text.index(opener)
            problems.append(f"math {_excerpt(text[at:], 60)!r}: {opener} is never closed")
    return problems


def build(modules: list[str], out: Path) -> list[str]:
    """Render ``modules`` (and docs/tutorial.md as the module 'tutorial') into
    ``out``; returns the problems found, each naming its page."""
    pdoc.render.configure(
        docformat="numpy",
        math=True,
        search=True,
        show_source=True,
        footer_text="handgrad: deep learning from scratch in NumPy",
    )
    pdoc.render_helpers.markdown_extensions["breaks"] = {"on_newline": True}
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tutorial = DOCS / "tutorial.md"
        if tutorial.exists() and "tutorial" not in modules:
            Path(tmp, "tutorial.py").write_text(f'"""\n.. include:: {tutorial.as_posix()}\n"""\n')
            sys.path.insert(0, tmp)
            modules = [*modules, "tutorial"]
        try:
            pdoc.pdoc(*modules, output_directory=out)
        except RuntimeError as e:  # pdoc: a named module cannot be imported, a docstring cannot be processed
            return [f"{e}: {e.__cause__!r}" if e.__cause__ else str(e)]
        finally:
            if sys.path[0] == tmp:
                sys.path.pop(0)
            sys.modules.pop("tutorial", None)
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)) and "pdoc" not in w.filename:
            continue  # a dependency's own deprecation notice is not a docstring problem
        problems.append(f"warning: {w.message}")
    for page in sorted(out.rglob("*.html")):
        name = page.relative_to(out).as_posix()
        problems += [f"{name}: {p}" for p in page_problems(page.read_text(encoding="utf-8"))]
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the handgrad documentation with pdoc.")
    parser.add_argument("modules", nargs="*", default=["handgrad"], help="modules to document (default: handgrad)")
    parser.add_argument("--out", type=Path, default=DOCS / "_build", help="output directory (default: docs/_build)")
    args = parser.parse_args(argv)
    problems = build(args.modules, args.out)
    for problem in problems:
        print(f"docs: {problem}", file=sys.stderr)
    if problems:
        print(f"docs: {len(problems)} problem(s); the documentation build failed", file=sys.stderr)
        return 1
    print(f"docs: built {', '.join(args.modules)} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
