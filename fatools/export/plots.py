"""PNG figures, one set per video: an action-unit heatmap per track, valence and arousal
over time and on the circumplex, and the shares of predicted emotions over time.

The time series are kept compactly while the records stream by (``export.series``,
collected once for the plots and the HTML report); the figures are drawn at the end,
one at a time: each figure is freed as soon as it is saved (a video's heatmaps share one
figure, freed after the last), and a track's AU matrix is expanded only while its
heatmap is drawn.  Figures are made with matplotlib's object API on the Agg canvas,
never through pyplot, so that an export neither needs a display nor changes the backend
of a notebook that calls it.
"""

from __future__ import annotations

import functools
import gc
import logging
import math
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fatools.export.series import HEAT_CODES, TrackArrays, VideoSeries
from fatools.export.sinks import Job, Sink, Video
from fatools.export.staging import safe_name
from fatools.facs import ACTION_UNITS, AU45
from fatools.records import track_order

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

log = logging.getLogger("fatools")

DPI = 100
# Pixel sizes of the figures (width, height); tests check them.
HEATMAP_SIZE = (1400, 900)
VA_SIZE = (1500, 750)
EMOTIONS_SIZE = (1400, 900)
MAX_TRACKS = 10  # heatmaps and lines for the tracks with most faces; the rest are logged
EMOTION_ROWS = 4  # all faces, then up to 3 tracks
EMOTION_COLOURS = {
    "Anger": "#d62728",
    "Contempt": "#8c564b",
    "Disgust": "#2ca02c",
    "Fear": "#9467bd",
    "Happiness": "#f2b701",
    "Neutral": "#b8b8b8",
    "Sadness": "#1f77b4",
    "Surprise": "#17becf",
}
GAP_INTERVALS = 2.5  # a jump of more than this many sampling intervals is drawn as a gap


def _step(x: np.ndarray) -> float:
    diffs = np.diff(np.unique(x))
    return float(np.median(diffs)) if len(diffs) else 1.0


def _with_gaps(x: np.ndarray, y: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """NaN inserted where the track went unseen, so lines do not bridge its absences."""
    if len(x) < 2:
        return x, y
    breaks = np.nonzero(np.diff(x) > GAP_INTERVALS * step)[0] + 1
    return np.insert(x.astype(float), breaks, np.nan), np.insert(y.astype(float), breaks, np.nan)


def _cell_edges(x: np.ndarray, step: float) -> tuple[np.ndarray, list[int]]:
    """Column edges for a heatmap of samples at ``x``, and where empty (gap) columns go."""
    edges, gaps = [x[0] - step / 2], []
    for i in range(len(x) - 1):
        if x[i + 1] - x[i] <= GAP_INTERVALS * step:
            edges.append((x[i] + x[i + 1]) / 2)
        else:
            edges += [x[i] + step / 2, x[i + 1] - step / 2]
            gaps.append(i + 1)
    edges.append(x[-1] + step / 2)
    return np.asarray(edges), gaps


def _note(fig: Figure, text: str | None) -> None:
    """A line at the foot of a figure saying what it leaves out (not only on stderr)."""
    if text:
        fig.text(0.01, 0.005, text, fontsize=9, color="dimgrey", ha="left", va="bottom")


def track_name(track: Any) -> str:
    return "untracked faces" if track is None else f"track {track}"


def _frame_axis(ax: Axes, timed: bool) -> None:
    """Frame indices are whole numbers: no ticks at 0.5."""
    if not timed:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _figure(size: tuple[int, int]) -> Figure:
    """A figure on the Agg canvas, laid out by hand: the constrained layout engine cost
    an extra pass over every artist, ~0.25 s a figure, to find the same places each time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)  # the canvas savefig draws on, and a renderer to measure text with
    return fig


def _heat_labels() -> list[str]:
    units = {u.code: u for u in ACTION_UNITS}
    return [f"{c}  {units[c].name}" for c in HEAT_CODES[:-1]] + [f"{AU45.code}  Blink (1 = eyes closed)"]


# The heatmap's layout in pixels, as the constrained layout engine made it for these
# fonts and sizes; fixed here because the engine measured every artist with an extra
# draw, about 0.25 s a heatmap, to arrive at the same place for every track.  Only the
# left margin depends on text that could change (the AU names): it is measured.
HEAT_BOTTOM, HEAT_TOP = 47.7, 26.5  # pixels: x tick labels and label; title
HEAT_AXES_RIGHT = 1291.9  # where the colour bar's gap begins
HEAT_BAR = (1302.75, 41.3)  # colour bar: left edge and width; its labels to the right
LAYOUT_PAD = 4.17  # the engine's padding at the figure's edges (3 points)
HEAT_PAD = LAYOUT_PAD + 4.86 + 4.86  # and the tick length and tick label padding


def _axes_at(fig: Figure, size: tuple[int, int], rect: tuple[float, float, float, float]) -> Axes:
    """Axes at ``rect``: left, bottom, width, height in pixels of a figure of ``size``."""
    left, bottom, width, height = rect
    return fig.add_axes((left / size[0], bottom / size[1], width / size[0], height / size[1]))


# Where the constrained layout engine put the valence-arousal panels, in pixels, for
# any data: their ticks and labels are the same text for every video.
VA_AXES = {
    "valence": (96.68, 399.39, 823.27, 298.44),
    "arousal": (96.68, 47.67, 823.27, 298.44),
    "circumplex": (1007.57, 130.61, 484.28, 484.28),  # square: equal aspect
}


def _heat_left() -> float:
    """The heatmap axes' left edge in pixels: right of the widest AU name."""
    from matplotlib import rcParams

    return _heat_left_for(rcParams["text.hinting"])  # hinting changes widths by a pixel or two


@functools.cache
def _heat_left_for(hinting: str) -> float:
    """Measured once a process (the names are the catalogue's): measuring the 28 names
    took ~20 ms a heatmap."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer, font = RendererAgg(1, 1, DPI), FontProperties(size=9)
    widest = max(
        renderer.get_text_width_height_descent(label, font, ismath=False)[0] for label in _heat_labels()
    )
    return float(widest) + HEAT_PAD


# The heatmap figures being drawn and what for (the axis: time or frames; the threshold),
# so that the next track's heatmap can reuse one.  Nothing here refers to the figure,
# which is dropped from it when it is freed.
_HEAT_FIGURES: weakref.WeakKeyDictionary[Figure, tuple[bool, float]] = weakref.WeakKeyDictionary()
# Their drawn frames (all but what changes with the track; see _draw_heatmap), as Agg's
# BufferRegion, which matplotlib's stubs do not name.
_HEAT_BACKGROUNDS: weakref.WeakKeyDictionary[Figure, Any] = weakref.WeakKeyDictionary()


def _heatmap_frame(timed: bool, threshold: float) -> Figure:
    """A heatmap without its cells and title: the AU names, the hatched background,
    the axis labels and the colour bar, the same for every track of a video."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig = _figure(HEATMAP_SIZE)
    left, tall = _heat_left(), HEATMAP_SIZE[1] - HEAT_BOTTOM - HEAT_TOP
    ax = _axes_at(fig, HEATMAP_SIZE, (left, HEAT_BOTTOM, HEAT_AXES_RIGHT - left, tall))
    bar_ax = _axes_at(fig, HEATMAP_SIZE, (HEAT_BAR[0], HEAT_BOTTOM, HEAT_BAR[1], tall))
    # Cells with no sample are transparent over a hatched background: "not seen", not "low".
    ax.set_facecolor("white")
    ax.patch.set_hatch("///")
    ax.patch.set_edgecolor("#c8c8c8")
    ax.axhline(len(HEAT_CODES) - 1, color="black", linewidth=1)
    ax.set_yticks(np.arange(len(HEAT_CODES)) + 0.5, _heat_labels(), fontsize=9)
    ax.set_ylim(len(HEAT_CODES), 0)  # catalogue order from the top
    ax.set_xlabel(("time (s)" if timed else "frame index") + "; hatched: face not seen")
    _frame_axis(ax, timed)
    # The bar's own scale, not the cells': the cells change with the track, the bar does not.
    scale = ScalarMappable(Normalize(0.0, 1.0), _active_colormap(threshold))
    bar = fig.colorbar(scale, cax=bar_ax)
    bar.set_label(f"AU score (0-1); active above {threshold:g} (yellow to red)")
    bar.ax.axhline(threshold, color="black", linewidth=1.5)
    _HEAT_FIGURES[fig] = (timed, threshold)
    return fig


def heatmap(
    track: TrackArrays,
    step: float,
    title: str,
    timed: bool,
    threshold: float,
    reuse: Figure | None = None,
) -> Figure:
    """AU scores of one track over time: one row per AU, colour = score, hatched = not seen.

    ``step`` is the video's sampling interval: a longer absence of the track is a gap.
    ``reuse``, the heatmap of another track, is redrawn with this track's cells and
    title where it was drawn for the same axis and threshold: a new figure cost ~0.1 s
    more (its axes and ticks made again, every text measured again), and its frame is
    drawn only once (see _draw_heatmap).
    """
    if reuse is not None and _HEAT_FIGURES.get(reuse) == (timed, threshold):
        fig = reuse
    else:
        fig = _heatmap_frame(timed, threshold)
    ax = fig.axes[0]  # then the colour bar's
    for cells in list(ax.collections):  # the last track's
        cells.remove()
    edges, gaps = _cell_edges(track.x, step)
    values = track.au
    if gaps:
        values = np.insert(values, gaps, np.nan, axis=1)
    ax.pcolormesh(
        edges,
        np.arange(len(HEAT_CODES) + 1),
        np.ma.masked_invalid(values),
        cmap=_active_colormap(threshold),
        vmin=0.0,
        vmax=1.0,
        shading="flat",
    )
    # Where autoscaling put them for a new figure; a reused one would keep the extent
    # of every track it has drawn.
    ax.set_xlim(edges[0], edges[-1])
    # y given: the title sits on the axes (nothing above them), without matplotlib
    # measuring the axes at each draw to check that it may (~0.03 s an axes).
    ax.set_title(title, fontsize=13, y=1.0)
    return fig


def _track_parts(ax: Axes) -> list[Artist]:
    """What a heatmap draws anew for each track, in the order the axes draw them: the
    cells, the time axis, the line above the blink row, the frame over the cells, the title."""
    parts: list[Artist] = [*ax.collections, ax.xaxis, *ax.lines, *ax.spines.values(), ax.title]
    return sorted(parts, key=lambda artist: artist.get_zorder())


def _draw_heatmap(fig: Figure, canvas: FigureCanvasAgg) -> None:
    """The frame (AU names, hatching, colour bar) is drawn once and kept as pixels; each
    track's heatmap puts them back and draws its own parts over them: drawing the 28
    names again cost ~80 ms a heatmap, two thirds of its drawing."""
    ax = fig.axes[0]
    parts = _track_parts(ax)
    background = _HEAT_BACKGROUNDS.get(fig)
    if background is None:
        for artist in parts:
            artist.set_visible(False)
        canvas.draw()
        for artist in parts:
            artist.set_visible(True)
        background = _HEAT_BACKGROUNDS[fig] = canvas.copy_from_bbox(fig.bbox)
    canvas.restore_region(background)
    for artist in parts:
        ax.draw_artist(artist)


def _active_colormap(threshold: float) -> Colormap:
    """Pale blues below the activity threshold, yellow to dark red above it, so that
    active stretches stand out at a glance and their strength still reads."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    steps = 256
    below = max(1, min(steps - 1, round(threshold * steps)))
    colours = np.vstack(
        [
            colormaps["Blues"](np.linspace(0.08, 0.5, below)),
            colormaps["YlOrRd"](np.linspace(0.25, 1.0, steps - below)),
        ]
    )
    return ListedColormap(colours, name="fatools_active").with_extremes(bad=(0, 0, 0, 0))


def va_figure(tracks: list[tuple[Any, TrackArrays]], step: float, title: str, timed: bool) -> Figure:
    """Valence and arousal of each track over time (left) and on the circumplex (right)."""
    from matplotlib.patches import Circle

    fig = _figure(VA_SIZE)
    ax_v, ax_a, ax_c = (
        _axes_at(fig, VA_SIZE, VA_AXES[name]) for name in ("valence", "arousal", "circumplex")
    )
    colours = [f"C{i % 10}" for i in range(len(tracks))]
    for (track, arrays), colour in zip(tracks, colours, strict=True):
        x, valence, arousal = arrays.x, arrays.valence, arrays.arousal
        dense = len(x) > 200  # markers only where single samples can still be told apart
        for ax, y in ((ax_v, valence), (ax_a, arousal)):
            xs, ys = _with_gaps(x, y, step)
            ax.plot(
                xs,
                ys,
                color=colour,
                linewidth=1.2 if dense else 1.5,
                marker="" if dense else ".",
                markersize=3,
                label=track_name(track),
            )
        ok = ~(np.isnan(valence) | np.isnan(arousal))
        ax_c.scatter(
            valence[ok],
            arousal[ok],
            s=4 if dense else 12,
            color=colour,
            alpha=0.3 if dense else 0.5,
            linewidths=0,
            label=track_name(track),
        )
        if ok.any():
            ax_c.scatter(
                [valence[ok].mean()],
                [arousal[ok].mean()],
                s=160,
                color=colour,
                edgecolor="black",
                marker="X",
                zorder=5,
            )
    for ax, name, low, high in (
        (ax_v, "valence", "negative", "positive"),
        (ax_a, "arousal", "calm", "excited"),
    ):
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel(f"{name}\n(-1 {low} .. +1 {high})")
        ax.grid(alpha=0.3)
    ax_v.set_title("Valence over time", y=1.0)
    ax_a.set_title("Arousal over time", y=1.0)
    ax_a.set_xlabel("time (s)" if timed else "frame index")
    _frame_axis(ax_a, timed)
    ax_a.sharex(ax_v)
    if tracks:
        ax_v.legend(loc="upper right", fontsize=8, ncol=min(len(tracks), 5))
    ax_c.add_patch(Circle((0, 0), 1.0, fill=False, color="grey", linewidth=0.8))
    ax_c.axhline(0, color="grey", linewidth=0.8)
    ax_c.axvline(0, color="grey", linewidth=0.8)
    for xq, yq, text, ha in (
        (0.95, 0.95, "Happy/Excited", "right"),
        (-0.95, 0.95, "Angry/Stressed", "left"),
        (-0.95, -0.95, "Sad/Depressed", "left"),
        (0.95, -0.95, "Calm/Relaxed", "right"),
    ):
        ax_c.text(
            xq,
            yq,
            text,
            ha=ha,
            va="center",
            fontsize=10,
            color="dimgrey",
            zorder=6,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5},
        )
    ax_c.set_xlim(-1.05, 1.05)
    ax_c.set_ylim(-1.05, 1.05)
    ax_c.set_aspect("equal")
    ax_c.set_xlabel("valence (negative .. positive)")
    ax_c.set_ylabel("arousal (calm .. excited)")
    ax_c.set_title("Circumplex: every face (dots), mean per track (X)", y=1.0)
    fig.suptitle(title, fontsize=13, y=1 - LAYOUT_PAD / VA_SIZE[1])
    return fig


def _bins(x: np.ndarray, step: float, count: int = 60) -> np.ndarray:
    low, high = float(x.min()), float(x.max())
    width = max((high - low + step) / count, step)
    n = max(1, math.ceil((high - low + step) / width))
    return low - step / 2 + width * np.arange(n + 1)


def _steps_between(edges: np.ndarray, bottom: np.ndarray, top: np.ndarray) -> np.ndarray:
    """The outline of bars from ``bottom`` to ``top`` between ``edges``: along the tops
    left to right, back along the bottoms (what ``ax.stairs`` draws with a baseline)."""
    x = np.repeat(edges, 2)
    return np.column_stack(
        [
            np.concatenate([x, x[::-1]]),
            np.concatenate(
                [
                    bottom[:1],
                    np.repeat(top, 2),
                    bottom[-1:],
                    bottom[-1:],
                    np.repeat(bottom, 2)[::-1],
                    bottom[:1],
                ]
            ),
        ]
    )


def emotions_figure(
    rows: list[tuple[str, np.ndarray, np.ndarray]],
    names: list[str],
    step: float,
    title: str,
    timed: bool,
    known: tuple[str, ...] = (),
) -> Figure:
    """Share of faces with each predicted emotion, in time bins, for all faces and the main tracks."""
    from matplotlib.patches import Polygon

    fig = _figure(EMOTIONS_SIZE)
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    every = np.concatenate([x for _, x, _ in rows]) if rows else np.zeros(0)
    edges = _bins(every, step) if len(every) else np.array([0.0, 1.0])
    # The configuration's classes in its order, then any others the records hold.
    order = [n for n in known if n in names] + sorted(n for n in names if n not in known)
    extra = iter(f"C{i}" for i in range(10))
    colours = {n: EMOTION_COLOURS.get(n) or next(extra, "black") for n in order}
    for ax, (label, x, codes) in zip(axes, rows, strict=True):
        which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        totals = np.bincount(which[codes >= 0], minlength=len(edges) - 1).astype(float)
        bottom = np.zeros(len(edges) - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            for name in order:
                share = (
                    np.bincount(which[codes == names.index(name)], minlength=len(edges) - 1) / totals * 100
                )
                top = bottom + np.nan_to_num(share)
                # One filled outline per class, not a bar per bin: the same stacked bars
                # to the eye, without ~60 rectangles to make and draw per class and row.
                # Added as an artist, not with ``ax.stairs``: the limits are given below,
                # and fitting them to every vertex of the outline cost ~5 ms a class.
                ax.add_artist(
                    Polygon(
                        _steps_between(edges, bottom, top), facecolor=colours[name], label=name, linewidth=0
                    )
                )
                bottom = top
        ax.set_ylim(0, 100)
        ax.set_ylabel("share of faces (%)")
        faces = int(totals.sum())
        ax.set_title(
            f"{label}: {faces} face{'' if faces == 1 else 's'} with an expression (white: none)",
            fontsize=10,
            loc="left",
            y=1.0,
        )
    width = edges[1] - edges[0]
    axes[-1].set_xlabel(
        f"time (s), in bins of {width:.3g} s" if timed else f"frame index, in bins of {width:.3g}"
    )
    axes[-1].set_xlim(edges[0], edges[-1])
    _frame_axis(axes[-1], timed)
    handles, labels = axes[0].get_legend_handles_labels()
    legend = fig.legend(handles, labels, loc="upper right", title="predicted emotion")
    _place_emotion_rows(fig, list(axes), legend)
    fig.suptitle(title, fontsize=13, y=1 - LAYOUT_PAD / EMOTIONS_SIZE[1])
    return fig


# Where the constrained layout engine put the emotion rows, in pixels: the same for any
# data but for the legend's width (the model's class names), which is measured.
EMOTION_MARGINS = (60.78, 47.67, 50.17)  # left: y labels; bottom: x ticks and label; top: titles
EMOTION_ROW_GAP = 27.94  # a row's title and the tick marks of the row above
EMOTION_LEGEND_GAP = 5.56


def _place_emotion_rows(fig: Figure, axes: list[Axes], legend: Legend) -> None:
    """The rows stacked between the margins, left of the legend in the top right corner."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg, reused by savefig
    left, bottom, top = EMOTION_MARGINS
    right = legend.get_window_extent(renderer).x0 - EMOTION_LEGEND_GAP
    n = len(axes)
    # The engine's padding between rows: 2 % of the height shared among them, 3 points at least.
    gap = EMOTION_ROW_GAP + 2 * max(LAYOUT_PAD, 0.01 * EMOTIONS_SIZE[1] / n)
    height = (EMOTIONS_SIZE[1] - bottom - top - (n - 1) * gap) / n
    width, tall = EMOTIONS_SIZE
    for i, ax in enumerate(axes):
        y = bottom + (n - 1 - i) * (height + gap)
        ax.set_position((left / width, y / tall, (right - left) / width, height / tall))


# zlib's fastest level: the figures are flat colours and text, so a harder search saves
# little (RGB at level 1 is within 10 % of matplotlib's RGBA at its level 6, often
# smaller) and cost 10-25 ms a figure on a 2.8 GHz Xeon.
PNG_COMPRESS_LEVEL = 1


def _draw(fig: Figure) -> FigureCanvasAgg:
    """``fig`` drawn on its Agg canvas (given one if it has none)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    if fig in _HEAT_FIGURES:
        _draw_heatmap(fig, canvas)
    else:
        canvas.draw()
    return canvas


def _write_png(fig: Figure, path: Path) -> None:
    """``fig`` drawn on its Agg canvas and written as an RGB PNG.

    What ``savefig`` writes but without the alpha channel: the figure's background is
    opaque, so a fourth byte per pixel said nothing and made zlib's work a third longer.
    """
    from PIL import Image

    rgb = np.asarray(_draw(fig).buffer_rgba())[..., :3]
    Image.fromarray(rgb).save(path, format="png", compress_level=PNG_COMPRESS_LEVEL, dpi=(DPI, DPI))


def _save(job: Job, fig: Figure, name: str) -> None:
    """Write ``fig`` as a PNG, staged under ``name``."""
    path = job.staging.temp()
    _write_png(fig, path)
    job.staging.stage("plots", path, name)


def _free(fig: Figure) -> None:
    """Free ``fig`` now.

    A figure is a web of reference cycles (artists and their figure, axes, callbacks),
    so dropping it frees nothing until Python's cyclic collector happens to run: a video
    with MAX_TRACKS heatmaps held several figures at once, 5-7 MiB each, and made the peak
    memory of an export grow with the number of tracks a long video accumulates.
    Clearing the figure and collecting now keeps one figure alive at a time; the
    collection is cheap inside ``_objects_so_far_frozen``.
    """
    _HEAT_FIGURES.pop(fig, None)
    _HEAT_BACKGROUNDS.pop(fig, None)
    fig.clear()
    gc.collect()


# FreeType's auto-hinter for every font (matplotlib's "classic" style asks for it too):
# matplotlib 3.11's default runs the font's own hinting instructions, which made drawing
# text, most of a figure's drawing, ~1.5 times as long (a heatmap drawn again in 130 ms
# instead of 88 on a 2.8 GHz Xeon).  The glyphs look the same; a label may be a pixel
# narrower.  No hinting at all was ~5 % faster still, its small text a little softer.
TEXT_HINTING = "force_autohint"


def _text_hinting() -> AbstractContextManager[None]:
    """TEXT_HINTING while the figures are made and drawn, the caller's setting after."""
    from matplotlib import rc_context

    return rc_context({"text.hinting": TEXT_HINTING})


@contextmanager
def _objects_so_far_frozen() -> Iterator[None]:
    """Full collections that look only at the objects made inside the block.

    A process that has imported torch (fa-run) holds some 200,000 long-lived objects,
    and a full collection walked them all after every figure: about 0.2 s a figure on a
    2.8 GHz Xeon, a third of the plots' time.  Frozen objects are left out of every
    collection but still keep what they reference alive, so a figure's cycles are freed
    just as before.  A freeze someone else made (a server before forking) is left as it is.
    """
    ours = gc.get_freeze_count() == 0
    if ours:
        gc.freeze()
    try:
        yield
    finally:
        if ours:
            gc.unfreeze()


class PlotSink(Sink):
    """The figures of the series ``job.series`` collects (export.series)."""

    fmt = "plots"

    def finish(self) -> None:
        job = self.job
        with _objects_so_far_frozen(), _text_hinting():
            for video in job.videos.values():
                state = job.series.videos.get(video.name)
                if state is None or not state.tracks:
                    log.info("%s: no faces, so no plots", video.name)
                    continue
                self._plot_video(video, state)

    def _plot_video(self, video: Video, state: VideoSeries) -> None:
        job = self.job
        stem = str(video.name) if video.name is not None else "unnamed video"
        timed = not np.isnan(np.frombuffer(state.all_t)).any()
        x_all = np.frombuffer(state.all_t if timed else state.all_frame)
        known = ~np.isnan(x_all)
        step = _step(x_all[known]) if known.any() else 1.0  # the video's sampling interval
        # Most faces first; equal counts in track order (numeric: 2 before 10, not text order).
        ranked = sorted(state.tracks.items(), key=lambda kv: (-len(kv[1]), track_order(kv[0])))
        note = None
        if len(ranked) > MAX_TRACKS:
            log.warning("%s: %d tracks; plotting the %d with most faces", video.name, len(ranked), MAX_TRACKS)
            kept = sorted((track for track, _ in ranked[:MAX_TRACKS]), key=track_order)
            note = (
                f"Tracks shown: {', '.join('untracked' if t is None else str(t) for t in kept)} "
                f"(the {MAX_TRACKS} with most faces of {len(ranked)}; the summary and tables have all)"
            )
        in_order = sorted(ranked[:MAX_TRACKS], key=lambda kv: track_order(kv[0]))
        threshold = state.threshold if state.threshold is not None else 0.5
        suffix = job.suffix(video)
        arrays = {track: TrackArrays(series, timed) for track, series in ranked[:MAX_TRACKS]}
        shown = [(track, arrays[track]) for track, _ in in_order if len(arrays[track].x)]
        heat = None  # one figure for the tracks' heatmaps, redrawn for each (see heatmap)
        for track, track_arrays in shown:
            if np.isnan(track_arrays.au).all():
                continue  # no action units for this track: an empty heatmap says nothing
            title = f"Action units over time: {track_name(track)}, {stem}"
            heat = heatmap(track_arrays, step, title, timed, threshold, reuse=heat)
            tag = "untracked" if track is None else f"track{safe_name(track)}"
            _save(job, heat, f"au_heatmap{suffix}_{tag}_{job.timestamp}.png")
        if heat is not None:
            _free(heat)
        if any(not np.isnan(a.valence).all() for _, a in shown):
            fig = va_figure(shown, step, f"Valence and arousal: {stem}", timed)
            _note(fig, note)
            _save(job, fig, f"valence_arousal{suffix}_{job.timestamp}.png")
            _free(fig)
        if state.label_names:
            labels = np.frombuffer(state.all_labels, dtype=np.int32)
            rows = [("All faces", x_all[known], labels[known])]
            if len(ranked) > 1:
                for track, _ in sorted(ranked[: EMOTION_ROWS - 1], key=lambda kv: track_order(kv[0])):
                    rows.append((track_name(track).capitalize(), arrays[track].x, arrays[track].labels))
            fig = emotions_figure(
                rows,
                state.label_names,
                step,
                f"Predicted emotions over time: {stem}",
                timed,
                job.expression_labels,
            )
            if len(ranked) > EMOTION_ROWS - 1:
                _note(
                    fig,
                    f"Rows: all faces, then the {EMOTION_ROWS - 1} tracks with most faces of {len(ranked)}",
                )
            _save(job, fig, f"emotions{suffix}_{job.timestamp}.png")
            _free(fig)
