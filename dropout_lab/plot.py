"""The book's few plot helpers: curves with seed bands, and heatmaps with spreads."""
import matplotlib.pyplot as plt
import numpy as np


def plot_curves(table, y="test_acc", x="epoch", by=None, ax=None, band="std", label=None):
    """One line per value of `by` (a column, or None for all rows): the mean of `y`
    over seeds at each `x`, with a band of ±1 std over seeds ("std"), the min-max
    range ("range"), or no band (None). Works on train()'s history and on sweep()'s
    table alike. Returns the axes."""
    ax = ax or plt.gca()
    groups = table.groupby(by, sort=True) if by else [(label or y, table)]
    for name, group in groups:
        stats = group.groupby(x)[y].agg(["mean", "std", "min", "max", "count"])
        name = f"{by}={name}" if by and label is None else (label or name)
        line, = ax.plot(stats.index, stats["mean"], label=f"{name}", marker="." if len(stats) < 30 else None)
        if band == "std" and (stats["count"] > 1).any():
            ax.fill_between(stats.index, stats["mean"] - stats["std"].fillna(0),
                            stats["mean"] + stats["std"].fillna(0), color=line.get_color(), alpha=0.2)
        elif band == "range" and (stats["count"] > 1).any():
            ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " ").replace("acc", "accuracy"))
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_heatmap(table, value="test_acc", rows="p1", cols="p2", ax=None, fmt="{:.3f}",
                 cmap="viridis"):
    """Heatmap of the mean of `value` over seeds, one cell per (rows, cols) pair,
    each annotated "mean ± std". Pass the final epoch only, e.g.
    table[table.epoch == table.epoch.max()]. Returns the axes."""
    ax = ax or plt.gca()
    stats = table.groupby([rows, cols])[value].agg(["mean", "std"])
    mean = stats["mean"].unstack(cols)
    std = stats["std"].unstack(cols)
    image = ax.imshow(mean.values, cmap=cmap, origin="lower", aspect="auto")
    ax.set_xticks(range(len(mean.columns)), [f"{c:g}" if isinstance(c, float) else c for c in mean.columns])
    ax.set_yticks(range(len(mean.index)), [f"{r:g}" if isinstance(r, float) else r for r in mean.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    middle = np.nanmean(mean.values)
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            m, s = mean.values[i, j], std.values[i, j]
            if np.isnan(m):
                continue
            text = fmt.format(m) + ("" if np.isnan(s) else "\n±" + fmt.format(s))
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="black" if m > middle else "white")
    ax.figure.colorbar(image, ax=ax, label=value.replace("_", " "))
    return ax


def animation_html(anim, **kwargs):
    """`anim.to_jshtml(**kwargs)` as an HTML object, without the Font Awesome
    stylesheet that matplotlib links from a CDN: the book must work offline, and
    the book's theme already provides the icons for the player's buttons."""
    import re

    from IPython.display import HTML
    html = anim.to_jshtml(**kwargs)
    return HTML(re.sub(r'<link rel="stylesheet"\s*href="https?://[^"]*font-awesome[^"]*">', "", html))
