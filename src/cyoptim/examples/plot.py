"""Figures of the examples, drawn with matplotlib's Agg renderer into PNG files.

matplotlib is optional: each function returns None (and draws nothing) when it
is not installed. Figures are built with ``matplotlib.figure.Figure`` rather
than pyplot, so calling these from a notebook or GUI program leaves its
backend and open figures alone.
"""

from .optional import optional_module


def _figure(width, height):
    """A new Agg-backed Figure, or None without matplotlib."""
    figure_module = optional_module("matplotlib.figure")
    if figure_module is None:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = figure_module.Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_training_curves(results, path, title="cyoptim demo"):
    """Loss and test-accuracy curves of every optimizer, saved as a PNG at `path`.

    Args:
        results: dicts with ``optimizer``, ``loss`` and ``accuracy`` (per epoch),
            as in the demo's results.json; an ``ema_accuracy`` list is drawn
            dotted in the same color.
        path: the PNG file to write.
        title: the figure's title.

    Returns:
        `path`, or None when matplotlib is not installed.
    """
    fig = _figure(12, 4.8)
    if fig is None:
        return None
    from matplotlib.ticker import MaxNLocator

    loss_ax, acc_ax = fig.subplots(1, 2)
    colors = _colors(len(results))
    for k, result in enumerate(results):
        epochs = range(1, len(result["loss"]) + 1)
        style = dict(color=colors[k], linestyle="-" if k < 10 else "--", label=result["optimizer"])
        loss_ax.plot(epochs, [_nan_if_none(v) for v in result["loss"]], **style)
        acc_ax.plot(epochs, result["accuracy"], **style)
        if "ema_accuracy" in result:
            acc_ax.plot(epochs, result["ema_accuracy"], color=colors[k], linestyle=":")
    loss_ax.set(
        xlabel="epoch",
        ylabel="training loss",
        yscale="log",
        title="training loss (whole training set)",
    )
    acc_ax.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy")
    # Zoom on where the runs end; the first epochs of slow starters leave the axes.
    final = [r[key][-1] for r in results for key in ("accuracy", "ema_accuracy") if r.get(key)]
    if final:
        acc_ax.set_ylim(max(0.0, min(final) - 0.05), 1.0)
    acc_ax.legend(loc="lower right", fontsize="small", ncol=2)
    for ax in (loss_ax, acc_ax):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path


def plot_lr_find(result, path, title="LR range test"):
    """The LR finder's curve, drawn by ``result.plot(ax)`` (suggestion marked), as a PNG.

    Returns:
        `path`, or None when matplotlib is not installed.
    """
    return _plot_result(result, path, title)


def plot_lr_search(result, path, title="learning-rate search", suggestion=None):
    """A learning-rate search's validation accuracy against the rate, drawn by
    ``result.plot(ax, suggestion)`` (the LR range test's suggestion as a line), as a PNG.

    Returns:
        `path`, or None when matplotlib is not installed.
    """
    return _plot_result(result, path, title, suggestion=suggestion)


def _plot_result(result, path, title, **options):
    """``result.plot(ax, **options)`` on a new figure with `title`, saved at `path`."""
    fig = _figure(7, 4.5)
    if fig is None:
        return None
    ax = fig.subplots()
    result.plot(ax, **options)
    ax.set_title(title)
    fig.savefig(path, dpi=100)
    return path


def _colors(n):
    """n distinguishable colors (matplotlib's tab10, then tab20's light shades)."""
    from matplotlib import colormaps

    tab10, tab20 = colormaps["tab10"], colormaps["tab20"]
    return [tab10(k) if k < 10 else tab20(2 * (k - 10) + 1) for k in range(n)]


def _nan_if_none(value):
    return float("nan") if value is None else value
