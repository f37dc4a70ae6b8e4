"""What a new user noticed: plots' track order and the note of the tracks shown, the
report's cap on tracks, the hint when no face was found, fa-run's AU threshold line,
and the sample tool's --help."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fatools.export import export, plots
from fatools.export.text import TRACKS_LISTED, report
from tests.test_export import TS, header, make_face


def crowd(tracks: int, frames: int = 3) -> list[dict]:
    """A header and frames in which every track is seen once per frame (equal face counts)."""
    rng = np.random.default_rng(3)
    records = [header()]
    for k in range(frames):
        faces = [
            make_face(rng, i, i, k, [10.0 * i, 10.0, 10.0 * i + 8, 18.0], {}, "Neutral", 0.1, 0.1)
            for i in range(tracks)
        ]
        records.append(
            {
                "schema": 1,
                "video": "clips/interview.mp4",
                "frame": 5 * k,
                "t": 0.2 * k,
                "width": 1280,
                "height": 720,
                "faces": faces,
            }
        )
    return records


def test_plots_take_tracks_in_numeric_order_and_say_which(tmp_path, monkeypatch):
    figures = {}

    def keep(job, fig, name):
        figures[name.split("_2")[0]] = [t.get_text() for t in fig.texts] + [
            text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts()
        ]

    monkeypatch.setattr(plots, "_save", keep)
    export(crowd(18), tmp_path, ["plots"], timestamp=TS)
    heatmaps = sorted(int(name.split("track")[1]) for name in figures if name.startswith("au_heatmap"))
    assert heatmaps == list(range(plots.MAX_TRACKS))  # 0..9, not 0, 1, 10..17
    va = figures["valence_arousal"]
    assert "Tracks shown: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 (the 10 with most faces of 18" in " ".join(va)
    assert [t for t in va if t.startswith("track ")] == [f"track {i}" for i in range(10)]
    assert any("3 tracks with most faces of 18" in t for t in figures["emotions"])


def test_report_lists_the_tracks_with_most_faces_and_counts_the_rest(tmp_path):
    result = export(crowd(TRACKS_LISTED + 7, frames=2), tmp_path, ["text"], timestamp=TS)
    text = result.files["text"][0].read_text()
    section = text[text.index("Faces and tracks") : text.index("Dominant emotions")]
    assert sum(line.startswith("    track ") for line in section.splitlines()) == TRACKS_LISTED
    assert "... and 7 more tracks" in section and "csv" in section
    assert "track 19 " in section and "track 20 " not in section


def test_report_says_no_faces_were_found(tmp_path):
    records = [
        header(),
        {
            "schema": 1,
            "video": "clips/interview.mp4",
            "frame": 0,
            "t": 0.0,
            "width": 1280,
            "height": 720,
            "faces": [],
        },
    ]
    text = export(records, tmp_path, ["text"], timestamp=TS).files["text"][0].read_text()
    assert "No faces were found" in text and "fa-predict --tasks fer adds them" not in text
    assert "fa-predict --tasks va adds them" not in text


def test_fa_run_report_has_the_au_threshold_line():
    from fatools.run import _options_dict, run_options

    metadata = {"video_path": "v.mp4", "options": _options_dict(run_options(au_threshold=0.55), "retinaface")}
    text = report(metadata, {}, {})
    assert "AU threshold:      active above 0.55" in text


def test_sample_help_describes_every_argument():
    proc = subprocess.run(
        [sys.executable, "-m", "fatools.sample", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    for words in (
        "pans and zooms over a photo",
        "the photo",
        "the clip to write",
        "length of the clip",
        "frames per second",
        "WIDTHxHEIGHT",
    ):
        assert words in proc.stdout, words


@pytest.mark.parametrize("track, key", [(None, (0, 0, "")), (2, (1, 2, "")), (10, (1, 10, ""))])
def test_track_order_is_numeric(track, key):
    assert plots.track_order(track) == key


def test_all_is_every_format_but_the_overlay():
    from fatools.export.formats import DEFAULT_FORMATS, FORMATS, parse_formats

    assert parse_formats([]) == parse_formats(["all"]) == DEFAULT_FORMATS and "overlay" not in DEFAULT_FORMATS
    assert parse_formats(["all,overlay"]) == FORMATS and parse_formats(["overlay"]) == ("overlay",)
    with pytest.raises(ValueError, match="unknown export format 'mp4'"):
        parse_formats(["mp4"])
