"""The run's ``index.html``: the report's table and every study's previews, on one page.

Written next to the run's summary.json when the run assembled volumes (``--volume``,
``--preview``). Plain HTML with one small style block, no script; images and volume
files are linked by paths relative to the page, so the folder can be moved, zipped or
served as it is.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .report import RunReport

PAGE = "index.html"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; background: #fafafa; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ccc; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr:last-child td { font-weight: bold; }
figure { display: inline-block; vertical-align: top; margin: 0 1.5em 1.5em 0; }
figure img { display: block; max-width: 560px; border: 1px solid #444; }
figcaption { font-size: 90%; max-width: 560px; }
.warning { color: #9a5b00; }
.note { color: #a00; }
"""


def relative_to_run(volumes: Sequence[dict[str, Any]], study: str) -> list[dict[str, Any]]:
    """A study download's volume entries with paths relative to the run's folder (the
    study's folder is ``<run folder>/<study>``)."""
    moved = []
    for entry in volumes:
        entry = dict(entry)
        for key in ("path", "sidecar", "preview"):
            if entry.get(key):
                entry[key] = f"{study}/{entry[key]}"
        moved.append(entry)
    return moved


def _link(path: str) -> str:
    return html.escape(quote(path), quote=True)


def _figure(entry: dict[str, Any]) -> str:
    name = html.escape(entry["name"])
    title = html.escape(entry.get("seriesDescription") or "(no series description)")
    shape = " x ".join(str(n) for n in entry["shape"] or [])
    spacing = " x ".join(f"{v:.3g}" for v in entry["spacing"] or [])
    parts = ["<figure>"]
    if entry.get("preview") and entry["status"] in ("written", "kept"):
        parts.append(f'<a href="{_link(entry["preview"])}"><img src="{_link(entry["preview"])}"'
                     f' alt="preview of {name}" loading="lazy"></a>')
    caption = [f"<b>{title}</b> ({html.escape(entry.get('modality') or '?')})",
               f"<code>{name}</code>", f"{shape} voxels, {spacing} mm"]
    files = [f'<a href="{_link(entry[key])}">{label}</a>'
             for key, label in (("path", "volume"), ("sidecar", "sidecar"))
             if entry.get(key) and entry["status"] in ("written", "kept")]
    if files:
        caption.append(" · ".join(files))
    caption += [f'<span class="warning">warning: {html.escape(w)}</span>'
                for w in entry["warnings"]]
    if entry.get("note"):
        caption.append(f'<span class="note">{html.escape(entry["note"])}</span>')
    parts.append("<figcaption>" + "<br>".join(caption) + "</figcaption></figure>")
    return "".join(parts)


def render(report: RunReport) -> str:
    """The page's HTML."""
    rows = report.rows()
    table = ["<table>", "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
             + "</tr>"]
    table += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
              for row in rows[1:]]
    table.append("</table>")
    total = report.total()
    body = [f"<h1>hi_async run {html.escape(report.run_id)}</h1>",
            f"<p>{total.verified} of {total.frames} frames verified in "
            f"{report.seconds:.1f} s{'' if report.ok else ' — <b>not every frame verified</b>'}"
            f"; details in <a href=\"summary.json\">summary.json</a>.</p>", *table]
    for study in report.studies:
        body.append(f"<h2>{html.escape(study.name)}</h2>")
        volumes = study.volumes or []
        shown = [v for v in volumes if v["name"] is not None]
        if not shown:
            body.append("<p>No volumes.</p>")
        body += [_figure(v) for v in shown]
        body += [f'<p class="note">{html.escape(v["note"])}</p>' for v in volumes
                 if v["name"] is None]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>hi_async run {html.escape(report.run_id)}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def write_study_page(out_dir: Path, report: RunReport) -> Path:
    """Write ``out_dir/index.html`` atomically; returns its path."""
    path = Path(out_dir) / PAGE
    tmp = path.with_name(f".{PAGE}.{os.getpid()}.tmp")
    tmp.write_text(render(report), encoding="utf-8")
    os.replace(tmp, path)
    return path
