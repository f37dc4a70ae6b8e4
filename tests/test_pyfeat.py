"""py-feat itself reads fatools' wide table: ``feat.utils.io.read_feat`` and the ``Fex``
accessors a user calls first, run by each py-feat release in its own environment
(``make feat-envs`` builds them, and ``make test`` does first), on the tables of a real
one-face video and of a real four-face photo (the real RetinaFace-MobileNet0.25
detector, stand-in predictors).

No column list of py-feat's is written here: whatever each accessor returns is compared,
cell by cell, with the records the table was made from, so a name py-feat does not find
or a column it reads as something else fails the test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
from conftest import require

from fatools.export.wide import AU_COLUMNS

# The releases `make feat-envs` installs (the Makefile's FEAT_VERSIONS): py-feat 2.x's
# read_feat tells its two detectors' tables apart, 0.6 has one reader.
FEAT_VERSIONS = ("2.1.5", "0.6.2")
FEAT_VENVS = Path(os.environ.get("FATOOLS_FEAT_VENVS", Path.home() / ".cache" / "fatools" / "venvs"))
ACCESSORS = ("aus", "emotions", "facebox", "faceboxes", "facepose", "poses", "landmarks", "time")

# Run by the side environment's python on each table given: what read_feat gives, as
# JSON (exact floats; NaN for empty cells); an accessor that raises is reported, not fatal.
READER = r"""
import json, sys, warnings
warnings.simplefilter("ignore")  # py-feat's own deprecation notes (Fex.facebox, Fex.facepose)
import feat
from feat.utils.io import read_feat, read_openface

def frame(df):
    return {"columns": [str(c) for c in df.columns], "rows": df.astype(float).values.tolist()}

def attempt(make):
    try:
        return make()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}

out = {"version": feat.__version__, "tables": {}}
for path in sys.argv[2:]:
    fex = read_feat(path)
    table = {"type": type(fex).__name__, "rows": len(fex), "columns": [str(c) for c in fex.columns]}
    for name in sys.argv[1].split(","):
        table[name] = attempt(lambda: frame(getattr(fex, name)))
    means = attempt(lambda: fex.aus.mean())
    table["aus.mean()"] = means if isinstance(means, dict) else {"index": list(means.index), "values": means.tolist()}
    top = attempt(lambda: fex.emotions.idxmax(axis=1))
    table["emotions.idxmax(axis=1)"] = top if isinstance(top, dict) else top.tolist()
    sizes = attempt(lambda: fex.groupby("frame").size())
    table["groupby(frame).size()"] = sizes if isinstance(sizes, dict) else {str(k): int(v) for k, v in sizes.items()}
    openface = read_openface(path)
    table["read_openface.aus"] = attempt(lambda: frame(openface.aus))
    out["tables"][path] = table
print(json.dumps(out))
"""


def fa_run(source: Path, out: Path, store: Path, *extra: str) -> tuple[Path, list[tuple[dict, dict]]]:
    """fa-run's wide table of ``source`` and its (record, face) pairs in table order (fa-run
    in this process: the clients that read the table are the real py-feat releases)."""
    from click.testing import CliRunner

    from fatools.cli.run import cli

    result = CliRunner().invoke(
        cli,
        [
            str(source),
            "-o",
            str(out),
            "--detector",
            "retinaface-mnet",
            "--models-dir",
            str(store),
            "--device",
            "cpu",
            "-f",
            "wide",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    (table,) = out.glob("facial_analysis_wide_*.csv")
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    faces = [(r, f) for r in records if r.get("type") is None for f in r.get("faces") or []]
    return table, faces


@pytest.fixture(scope="module")
def tables(tmp_path_factory, mixed_store, faces_dir) -> dict[str, tuple[Path, list[tuple[dict, dict]]]]:
    from fatools.sample import builtin_photo, pan_zoom_clip

    root = tmp_path_factory.mktemp("pyfeat")
    clip = root / "portrait.mp4"
    pan_zoom_clip(builtin_photo("grace_hopper"), str(clip), seconds=2, fps=25, size=(640, 360))
    video = fa_run(clip, root / "video", mixed_store, "--every", "10")
    photo = fa_run(faces_dir / "family4.jpg", root / "photo", mixed_store)
    # What the tables are said to be: one face on each sampled frame, four on the photo.
    assert len(video[1]) == 5 and len({r["frame"] for r, _ in video[1]}) == 5
    assert len(photo[1]) == 4 and {r["frame"] for r, _ in photo[1]} == {0}
    return {"video": video, "photo": photo}


_read: dict[str, dict] = {}


@pytest.fixture(params=FEAT_VERSIONS, scope="module")
def pyfeat(request) -> tuple[str, dict]:
    """(version, what that py-feat release read from each table, by table name)."""
    version = request.param
    python = FEAT_VENVS / f"py-feat-{version}" / "bin" / "python"
    require(python.is_file(), f"{python} not found: `make feat-envs` builds py-feat {version}'s environment")
    if version not in _read:
        tables = request.getfixturevalue("tables")  # made only when a py-feat is there to read them
        paths = {name: str(path) for name, (path, _) in tables.items()}
        proc = subprocess.run(
            [python, "-c", READER, ",".join(ACCESSORS), *paths.values()],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["version"] == version
        _read[version] = {name: result["tables"][path] for name, path in paths.items()}
    return version, _read[version]


def same(a, b) -> bool:
    """Equal numbers (the CSV must round-trip exactly), or both empty."""
    empty_a = a is None or (isinstance(a, float) and math.isnan(a))
    empty_b = b is None or (isinstance(b, float) and math.isnan(b))
    return empty_a and empty_b if empty_a or empty_b else a == b


def cells(read: dict, accessor: str) -> list[dict]:
    """The accessor's rows as {column: value}, after checking that it gave some."""
    block = read[accessor]
    assert "error" not in block, f"fex.{accessor}: {block['error']}"
    assert block["columns"], f"fex.{accessor} has no columns"
    return [dict(zip(block["columns"], row, strict=True)) for row in block["rows"]]


@pytest.mark.parametrize("name", ["video", "photo"])
def test_read_feat_gives_a_row_per_face_with_the_records_values(pyfeat, tables, name):
    version, read = pyfeat
    table, faces = tables[name]
    got = read[name]
    assert got["type"] == "Fex" and got["rows"] == len(faces)
    problems = {
        accessor: got[accessor].get("error") or "no columns"
        for accessor in ACCESSORS
        if "error" in got[accessor] or not got[accessor]["columns"]
    }
    assert not problems, f"py-feat {version} on the {name} table: {problems}"
    for accessor in ACCESSORS:
        assert len(cells(got, accessor)) == len(faces), accessor
    rows = zip(faces, *(cells(got, accessor) for accessor in ACCESSORS), strict=True)
    for (record, face), aus, emotions, facebox, faceboxes, facepose, poses, landmarks, time in rows:
        assert time == {"frame": record["frame"]}
        # Every unit of the records, under fatools' column name, and no other column.
        assert sorted(aus) == sorted([*AU_COLUMNS.values(), "AU45"])
        for code, column in AU_COLUMNS.items():
            assert same(aus[column], face["au"]["probs"][code]), column
        assert aus["AU45"] in (0, 1)
        # The expression scores, under the facetorch labels py-feat has (all but Contempt).
        scores = face["expression"]["scores"]
        assert sorted(emotions) == sorted(label.lower() for label in scores if label != "Contempt")
        for label, score in scores.items():
            if label != "Contempt":
                assert same(emotions[label.lower()], score), label
        x1, y1, x2, y2 = face["box"]
        assert facebox == faceboxes
        assert (faceboxes["FaceRectX"], faceboxes["FaceRectY"], faceboxes["FaceScore"]) == (
            x1,
            y1,
            face["score"],
        )
        assert faceboxes["FaceRectWidth"] == pytest.approx(x2 - x1) and faceboxes[
            "FaceRectHeight"
        ] == pytest.approx(y2 - y1)
        # Yaw, pitch and roll in degrees; nothing else (py-feat 2's X, Y, Z) is filled in.
        assert facepose.keys() == poses.keys() and all(same(facepose[k], poses[k]) for k in poses)
        pose = face["pose"]
        assert (poses["Yaw"], poses["Pitch"], poses["Roll"]) == (pose["yaw"], pose["pitch"], pose["roll"])
        assert all(same(value, None) for key, value in poses.items() if key not in ("Yaw", "Pitch", "Roll"))
        # The 68 landmarks in frame pixels, x_0..x_67 then y_0..y_67.
        points = face["landmarks3d"]
        assert len(landmarks) == 2 * len(points) == 136
        for i, (x, y, _) in enumerate(points):
            assert (landmarks[f"x_{i}"], landmarks[f"y_{i}"]) == (x, y), i


@pytest.mark.parametrize("name", ["video", "photo"])
def test_a_users_first_calls_give_the_records_answers(pyfeat, tables, name):
    version, read = pyfeat
    table, faces = tables[name]
    got = read[name]
    means = got["aus.mean()"]
    assert "error" not in means, means
    mean = dict(zip(means["index"], means["values"], strict=True))
    for code, column in AU_COLUMNS.items():
        assert mean[column] == pytest.approx(sum(f["au"]["probs"][code] for _, f in faces) / len(faces)), (
            column
        )
    top = got["emotions.idxmax(axis=1)"]
    assert not isinstance(top, dict), top
    expected = [
        max((s, label) for label, s in f["expression"]["scores"].items() if label != "Contempt")[1].lower()
        for _, f in faces
    ]
    assert top == expected
    per_frame = {}
    for record, _ in faces:
        per_frame[str(record["frame"])] = per_frame.get(str(record["frame"]), 0) + 1
    assert got["groupby(frame).size()"] == per_frame


def test_read_openface_finds_no_openface_columns(pyfeat):
    """The wide table borrows OpenFace's landmark names only; it is not an OpenFace CSV,
    and py-feat's OpenFace reader finds none of its action units (fa-export(1))."""
    version, read = pyfeat
    for name, got in read.items():
        assert "KeyError" in got["read_openface.aus"].get("error", ""), (name, got["read_openface.aus"])
