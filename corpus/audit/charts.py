"""Charts for report.html as inline SVG (matplotlib, text drawn as paths): the page needs no script, no font and
no request to show them, and prints as it looks."""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to files only

import matplotlib.pyplot as plt

#: Colours of the series, in order (kept first): colour-blind-safe (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#999999", "#009E73", "#CC79A7", "#E69F00")
#: Series that keep their colour in every chart, whichever of them a chart has.
FIXED = {"kept": PALETTE[0], "removed by this filter": PALETTE[1], "removed by another step": PALETTE[2],
         "removed": PALETTE[1]}  # fmt: skip
_STYLE = {
    "svg.fonttype": "path",  # glyphs as paths: nothing to load at view time
    "svg.hashsalt": "corpus",  # stable element ids, so the same data renders the same bytes
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
    "legend.fontsize": 7,
    "legend.frameon": False,
}


def _svg(fig: Any, label: str) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE: the SVG sits inside HTML
    # Scale with its container; keep the aspect ratio (viewBox stays).
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="chart"', svg, count=1)
    return svg.replace("<svg", f'<svg role="img" aria-label="{label}"', 1)


def histogram(
    title: str,
    edges: list[float],
    series: dict[str, list[int]],
    thresholds: list[float] = (),  # type: ignore[assignment]
    log_x: bool = False,
    xlabel: str = "",
    width: float = 4.2,
) -> str:
    """Step histograms of several series over the same bins, with thresholds as dashed vertical lines."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(width, 2.3))
        spare = iter(c for c in PALETTE if c not in FIXED.values())
        for name, counts in series.items():
            colour = FIXED.get(name) or next(spare, "#000")
            ax.stairs(counts, edges, label=f"{name} ({sum(counts):,})", color=colour, fill=len(series) == 1,
                      alpha=0.85, linewidth=1.4)  # fmt: skip
        for t in thresholds:
            if edges[0] <= t <= edges[-1]:
                ax.axvline(t, color="#000", linestyle="--", linewidth=1)
                ax.annotate(f"threshold {t:g}", (t, 1), xycoords=("data", "axes fraction"), fontsize=7,
                            xytext=(3, -8), textcoords="offset points")  # fmt: skip
        if log_x:
            ax.set_xscale("symlog", linthresh=1)
        ax.set_title(title, loc="left")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("documents")
        if series:  # below the plot: it never hides bars or threshold labels
            ax.legend(loc="upper left", bbox_to_anchor=(0, -0.18 if not xlabel else -0.3), ncol=3, fontsize=6.5)
        return _svg(fig, f"histogram of {title}")


def bars(
    title: str,
    labels: list[str],
    series: dict[str, list[float]],
    xlabel: str = "",
    log: bool = False,
    percent: bool = False,
    width: float = 7.0,
) -> str:
    """Horizontal bars, one group per label (top to bottom in the given order), a bar per series."""
    height = max(1.4, 0.28 * len(labels) * max(1, len(series)) ** 0.5 + 0.6)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(width, height))
        n = max(1, len(series))
        thickness = 0.8 / n
        for i, ((name, values), colour) in enumerate(zip(series.items(), PALETTE)):
            positions = [j + (i - (n - 1) / 2) * thickness for j in range(len(labels))]
            ax.barh(positions, values, height=thickness, color=colour, label=name)
            for y, v in zip(positions, values):
                text = f"{100 * v:.1f}%" if percent else f"{v:,.0f}"
                ax.annotate(text, (v, y), xytext=(2, 0), textcoords="offset points", va="center", fontsize=6.5)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        if log:
            ax.set_xscale("log")
        if percent:
            ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.set_title(title, loc="left")
        ax.set_xlabel(xlabel)
        if len(series) > 1:
            ax.legend(loc="lower right")
        return _svg(fig, title)


def columns(title: str, labels: list[str], values: list[int], xlabel: str = "", log: bool = False) -> str:
    """Vertical bars (e.g. documents per duplicate-cluster size)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(4.2, 2.3))
        ax.bar(range(len(labels)), values, color=PALETTE[0])
        ax.set_xticks(range(len(labels)), labels, rotation=90 if len(labels) > 12 else 0)
        if log:
            ax.set_yscale("log")
        ax.set_title(title, loc="left")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("documents")
        return _svg(fig, title)


__all__ = ["PALETTE", "bars", "columns", "histogram"]
