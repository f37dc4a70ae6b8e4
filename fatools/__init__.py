"""fatools: facial action analysis of videos with facetorch, as composable Unix tools.

Python API (the same analysis as ``fa-run``)::

    import fatools
    analysis = fatools.analyze_video("talk.mp4", "results/", sample_rate=5)
    analyzer = fatools.FacialActionVideoAnalyzer(config_path=None, device="cuda")
    analysis = analyzer.analyze_video("talk.mp4", "results/", sample_rate=5)

Both return the JSON export's dictionary: analysis_metadata, video_metadata,
frame_analyses, summary_statistics.  The frames are ``frame_analyses``, as in the seed
tool's JSON (its README's ``results['frame_results']`` is a mistake there).
``analyze_video_facial_actions`` is the seed's name for ``analyze_video``.
"""

from typing import Any

from fatools.versions import __version__

# Reached through __getattr__, from fatools.run, on first use.
_LAZY = (
    "analyze_video",
    "analyze_video_facial_actions",
    "FacialActionVideoAnalyzer",
    "VideoAnalyzer",
    "RunOptions",
    "run_options",
)

__all__ = ["FacialActionVideoAnalyzer", "__version__", "analyze_video", "analyze_video_facial_actions"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import fatools` (and every command's --help) does not load torch.
    if name in _LAZY:
        from fatools import run

        return getattr(run, name)
    raise AttributeError(f"module 'fatools' has no attribute {name!r}")


def __dir__() -> list[str]:
    # Without it dir(fatools), and so a notebook's completion, shows none of the lazy names.
    return sorted(set(globals()) | set(_LAZY))
