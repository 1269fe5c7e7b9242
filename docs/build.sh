#!/usr/bin/env bash
# The API reference (from the docstrings) and the tutorial, as HTML in docs/_build.
# Exits non-zero on any warning or broken docstring (see docs/build.py).
# Needs pdoc: pip install -e ".[docs]". DOCS_OUT=DIR builds elsewhere.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python}"
if ! "$python" -c "import pdoc" 2>/dev/null; then
  echo "docs: pdoc is not installed (pip install -e \".[docs]\")" >&2
  exit 1
fi
out="${DOCS_OUT:-$root/docs/_build}"
rm -rf "$out"
PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" "$python" "$root/docs/build.py" --out "$out" "$@"
