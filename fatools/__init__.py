"""fatools: facial action analysis of videos with facetorch, as composable Unix tools.

Python API (the same analysis as ``fa-run``)::

    import fatools
    analysis = fatools.analyze_video("talk.mp4", "results/", sample_rate=5)
    analyzer = fatools.FacialActionVideoAnalyzer(config_path=None, device="cuda")
    analysis = analyzer.analyze_video("talk.mp4", "results/", sample_rate=5)

Both return the JSON export's dictionary: analysis_metadata, video_metadata,
frame_analyses, summary_statistics.
"""

__version__ = "0.1.0"

__all__ = ["analyze_video", "FacialActionVideoAnalyzer", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `import fatools` (and every command's --help) does not load torch.
    if name in ("analyze_video", "FacialActionVideoAnalyzer", "VideoAnalyzer", "RunOptions", "run_options"):
        from fatools import run

        return getattr(run, name)
    raise AttributeError(f"module 'fatools' has no attribute {name!r}")
