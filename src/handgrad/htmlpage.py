"""The one HTML page writer: the run report (``report.html``) and the sweep report
(``index.html``) are both a title and a body on a self-contained page with one
stylesheet; images and other files are referenced by relative path.
"""
from __future__ import annotations

from html import escape

from .atomic import write_text

STYLE = """body{font-family:system-ui,sans-serif;max-width:80rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{padding:.2rem .7rem;border-bottom:1px solid #ddd}
th{background:#f3f3f3}tr.summary th,tr.summary td{font-weight:600}pre{background:#f6f6f6;padding:1rem;overflow-x:auto}
img{max-width:100%;display:block;margin:1rem 0}dt{font-weight:600}.best{background:#eef8ee;padding:.6rem}"""


def write_page(path, title: str, body: str) -> None:
    """Write the page ``<h1>title</h1>`` + ``body`` (HTML, inserted as is) to ``path`` atomically, creating its folder."""
    page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n")
    write_text(path, page)
