"""What the HTML reports share: the page, its style, embedded PNG figures, tables.

The reports are self-contained: figures are embedded as base64 PNG (:func:`img_tag`).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable

import numpy as np
import pandas as pd

from bids_w2v.reports.bibtex import BIBTEX

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")


def page_style(max_width: int, extra: str = "") -> str:
    """The reports' CSS, for pages ``max_width`` pixels wide, plus ``extra`` rules."""
    return f"""
body {{ font-family: sans-serif; max-width: {max_width}px; margin: 2em auto; color: #222; }}
h1 {{ font-size: 1.6em; }} h2 {{ border-bottom: 1px solid #ccc; padding-bottom: .2em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .2em .8em;
border-bottom: 1px solid #eee; text-align: left; }} img {{ max-width: 100%; }}
.note {{ color: #555; font-size: .9em; }}
pre {{ white-space: pre-wrap; background: #f6f6f6; padding: 1em; font-size: .85em; }}
{extra}"""


def page(title: str, style: str, body: str) -> str:
    """A complete HTML page (``title`` is escaped, ``body`` is HTML)."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{style}</style></head><body>
{body}
</body></html>
"""


def methods_section(methods: str, heading: str = "<h2>Methods</h2>") -> str:
    """The methods text and the BibTeX of the references, as preformatted text."""
    return (
        f"{heading}\n<pre>{html.escape(methods)}</pre>\n"
        f"<h3>BibTeX</h3>\n<pre>{html.escape(BIBTEX)}</pre>"
    )


def figure_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` embedding a PNG."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def kv_rows(items: dict) -> str:
    """Table rows of keys (header cells) and values."""
    return "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in items.items()
    )


def kv_table(items: dict) -> str:
    """A table of keys and values."""
    return f"<table>{kv_rows(items)}</table>"


def frame_table(frame: pd.DataFrame, floats: str = "{:.4f}") -> str:
    """A data frame as an HTML table (floats formatted, NaN as ``n/a``)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float):
                text = "n/a" if np.isnan(value) else floats.format(value)
            else:
                text = str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def count_runs(sources: Iterable[str]) -> int:
    """Runs among a map's ``Sources``: NIfTI or CIFTI BOLD, or the hemi-L GIfTI of a pair."""
    return sum(
        "_bold.nii" in s
        or s.endswith(".dtseries.nii")
        or (s.endswith(".func.gii") and "hemi-R" not in s)
        for s in sources
    )


def count_stimuli(sources: Iterable[str]) -> int:
    """Audio files among a map's ``Sources``."""
    return len({s for s in sources if s.lower().endswith(AUDIO_EXTENSIONS)})
