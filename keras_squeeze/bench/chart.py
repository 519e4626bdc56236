"""A PNG of the latency distributions, one box (with every run as a dot) per model."""

from __future__ import annotations

import pathlib

from keras_squeeze.errors import ConfigError, DependencyError

INSTALL_HINT = "pip install 'keras-squeeze[charts]' (or pip install matplotlib)"


def require_matplotlib():
    """The matplotlib module, or DependencyError with the install line."""
    try:
        import matplotlib
    except ImportError as e:
        raise DependencyError(
            "The latency chart needs matplotlib, which is not installed. Expected the "
            f"'charts' extra: {INSTALL_HINT}. Received: ImportError: {e}"
        ) from e
    return matplotlib


def latency_chart(result, path, title: str | None = None) -> pathlib.Path:
    """Writes a PNG: per model a box plot of its runs (local runs) or its summary.

    Local runs draw every steady-state time; benchmark_model results, which
    keep no per-run times, draw min / p50-or-mean / max as a range.

    Raises:
        DependencyError: matplotlib is not installed (an ImportError; the
            message gives the install line).
        ConfigError: `path` does not end in .png.
    """
    path = pathlib.Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(
            f"The chart is written as PNG. Expected a path ending in .png. Received: '{path}'"
        )
    require_matplotlib()
    import io

    from matplotlib.figure import Figure  # no pyplot: the user's backend stays untouched

    from keras_squeeze.core import atomic

    names = list(result.models)
    fig = Figure(figsize=(max(4.0, 1.4 * len(names) + 2), 4.0), dpi=100)
    ax = fig.subplots()
    # Runs beyond 1.5x the p99 (scheduler hiccups) would squash the boxes: cut the axis there.
    tops = [_top(result.models[n].latency) for n in names]
    for i, name in enumerate(names, start=1):
        r = result.models[name]
        lat = r.latency
        if r.samples_ms:
            ax.boxplot(r.samples_ms, positions=[i], widths=0.5, showfliers=False)
            jitter = [i + 0.18 * ((k * 0.6180339) % 1 - 0.5) for k in range(len(r.samples_ms))]
            ax.scatter(jitter, r.samples_ms, s=3, alpha=0.3)
        else:
            ax.vlines(i, lat.min_ms, lat.max_ms)
            ax.plot([i], [lat.center_ms], marker="o")
        ax.annotate(
            f"{lat.center_ms:.3g} ms\n{result.ratio(name):.2f}x",
            (i, tops[i - 1]),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize=8,
        )
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("latency per inference (ms)")
    settings = result.settings
    ax.set_title(
        title
        or f"delegate: {settings.get('delegate', '?')}, "
        f"{settings.get('num_threads', '?')} thread(s), ratios vs {result.reference}",
        fontsize=10,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylim(0, max(tops) * 1.2)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic.write_bytes(path, buffer.getvalue())


def _top(lat) -> float:
    return min(lat.max_ms, 1.5 * lat.p99_ms) if lat.p99_ms is not None else lat.max_ms
