"""The sweep as a picture: frames/s against fetchers, one line per injected latency.

matplotlib is an optional extra (``pip install 'hi_async[plot]'``); without it the plot
is skipped with a message and the numbers stay in the JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_sweep(sweep: list[dict[str, Any]], path: Path) -> str:
    """Write ``path`` (PNG); returns what happened, for the run's output."""
    points = [r for r in sweep if r.get("sweep") == "latency-fetchers"
              and r.get("pipelineFramesPerSecond")]
    if not points:
        return "plot skipped: no latency x fetchers sweep in this run (use --sweep)"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install 'hi_async[plot]')"
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for latency in sorted({r["config"]["latencyMs"] for r in points}):
        row = sorted((r for r in points if r["config"]["latencyMs"] == latency),
                     key=lambda r: r["config"]["fetchers"])
        ax.plot([r["config"]["fetchers"] for r in row],
                [r["pipelineFramesPerSecond"] for r in row], marker="o",
                label=f"{latency:g} ms")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("fetchers (concurrent GetImageFrame)")
    ax.set_ylabel("verified frames/s (pipeline, start-up excluded)")
    ax.set_title("hi_async on the local stack, by injected latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="latency")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return f"plot written to {path}"
