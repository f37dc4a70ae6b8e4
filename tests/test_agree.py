"""fa-agree (fatools.agree): synthetic codings with known answers, each statistic against
its library and a hand-computed case, every reference format, alignment edge cases, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fatools.agree import agree, stats
from fatools.agree.readers import read_coding

FPS = 25.0


def write_records(
    path: Path,
    probs: dict[str, np.ndarray],
    video: str = "clip.mp4",
    fps: float = FPS,
    every: int = 1,
    labels=None,
    valence=None,
    extra_track: int = 0,
) -> Path:
    """A frames.jsonl of one face (track 0) per sampled frame with these AU scores (frame i = sample i * every)."""
    n = len(next(iter(probs.values())))
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        {
            "schema": 1,
            "type": "video",
            "video": video,
            "fps": fps,
            "frame_count": n * every,
            "duration": n * every / fps,
        }
    ]
    for i in range(n):
        face = {
            "face": 0,
            "box": [0, 0, 50, 50],
            "track": 0,
            "au": {"probs": {k: float(v[i]) for k, v in probs.items()}, "threshold": 0.5},
        }
        if labels is not None:
            face["expression"] = {"label": labels[i]}
        if valence is not None:
            face["va"] = {"valence": float(valence[i]), "arousal": 0.0}
        faces = [face]
        if i < extra_track:  # a second face, seen in fewer frames than track 0
            faces.append(
                {"face": 1, "box": [0, 0, 99, 99], "track": 7, "au": {"probs": {}, "threshold": 0.5}}
            )
        lines.append({"schema": 1, "video": video, "frame": i * every, "t": i * every / fps, "faces": faces})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def blocks(n: int, period: int = 20, offset: int = 0) -> np.ndarray:
    return (((np.arange(n) + offset) // period) % 2 == 1).astype(int)


def row(result, unit: str, rater="fatools", reference=None, video="all") -> dict:
    t = result.table
    t = t[(t.unit == unit) & (t.rater == rater) & (t.video == video)]
    if reference:
        t = t[t.reference == reference]
    assert len(t) == 1, t
    return t.iloc[0].to_dict()


@pytest.fixture
def clip(tmp_path):
    n = 200
    au12 = blocks(n)
    probs = {
        "AU12": np.where(au12, 0.8, 0.2),
        "AU6": np.where(blocks(n, 25), 0.7, 0.1),
        "AU4": np.full(n, 0.1),
    }
    labels = np.where(au12, "Happiness", "Neutral")
    return write_records(tmp_path / "res" / "frames.jsonl", probs, labels=labels, extra_track=30), au12


def test_known_flips_against_sklearn_and_by_hand(clip, tmp_path):
    from sklearn.metrics import cohen_kappa_score, f1_score

    records, au12 = clip
    ref = au12.copy()
    ref[[3, 4, 25]] = (
        1 - ref[[3, 4, 25]]
    )  # two false positives for fatools (3, 4 absent -> present), one miss
    pd.DataFrame({"frame": np.arange(len(ref)), "AU12": ref}).to_csv(tmp_path / "a.csv", index=False)
    result = agree(records.parent, {"a": [tmp_path / "a.csv"]}, resamples=200)
    r = row(result, "AU12")
    tp = int(((ref == 1) & (au12 == 1)).sum())
    assert r["precision"] == pytest.approx(tp / au12.sum()) and r["recall"] == pytest.approx(tp / ref.sum())
    assert r["f1"] == pytest.approx(f1_score(ref, au12)) == pytest.approx(2 * tp / (au12.sum() + ref.sum()))
    assert r["kappa"] == pytest.approx(cohen_kappa_score(ref, au12))
    assert r["f1_lo"] <= r["f1"] <= r["f1_hi"] and r["base_rate"] == pytest.approx(ref.mean())
    sums = stats.occ_from_sums(stats.occ_sums(ref, au12))
    assert float(sums["kappa"]) == pytest.approx(r["kappa"]) and float(sums["f1"]) == pytest.approx(r["f1"])
    assert result.alignment.iloc[0]["track"] == 0  # the main track: seen in 200 frames, track 7 in 30
    assert result.alignment.iloc[0]["face_rule"].startswith("main track")


def test_au_never_present_is_undefined_not_zero(clip, tmp_path):
    records, au12 = clip
    pd.DataFrame({"frame": np.arange(len(au12)), "AU12": au12, "AU4": 0}).to_csv(
        tmp_path / "a.csv", index=False
    )
    r = row(agree(records, {"a": [tmp_path / "a.csv"]}, resamples=0), "AU4")
    assert np.isnan(r["f1"]) and np.isnan(r["recall"]) and np.isnan(r["kappa"]) and r["accuracy"] == 1.0


def test_shift_of_k_frames_and_event_tolerance(clip, tmp_path):
    records, au12 = clip
    k = 3
    pd.DataFrame({"frame": np.arange(len(au12)) + k, "AU12": au12}).to_csv(tmp_path / "a.csv", index=False)
    loose = row(agree(records, {"a": [tmp_path / "a.csv"]}, tolerance=k / FPS + 0.01, resamples=0), "AU12")
    tight = row(agree(records, {"a": [tmp_path / "a.csv"]}, tolerance=(k - 1) / FPS, resamples=0), "AU12")
    assert loose["onset_f1"] == 1.0 and loose["event_f1"] == 1.0 and tight["onset_f1"] == 0.0
    assert loose["f1"] < 1.0  # frame by frame the shift costs k frames per event


def test_second_coder_inter_coder_and_consensus(clip, tmp_path):
    import krippendorff
    from sklearn.metrics import cohen_kappa_score

    records, au12 = clip
    b = au12.copy()
    b[[10, 11, 12, 50]] = 1 - b[[10, 11, 12, 50]]
    six = {
        "a": blocks(len(au12), 25) * 3,
        "b": blocks(len(au12), 25) * np.where(np.arange(len(au12)) % 3, 3, 2),
    }
    for name, values in (("a", au12), ("b", b)):
        pd.DataFrame({"frame": np.arange(len(au12)), "AU12": values, "AU6": six[name]}).to_csv(
            tmp_path / f"{name}.csv", index=False
        )
    result = agree(records, {"a": [tmp_path / "a.csv"], "b": [tmp_path / "b.csv"]}, resamples=100)
    assert row(result, "AU12", "a", "b")["kappa"] == pytest.approx(cohen_kappa_score(b, au12))
    assert row(result, "AU12", reference="a")["f1"] == 1.0
    coders = row(result, "AU12", "coders")
    assert coders["alpha"] == pytest.approx(
        krippendorff.alpha(np.stack([au12, b]).astype(float), level_of_measurement="nominal")
    )
    consensus = row(result, "AU12", reference="consensus")  # both coders: present where both say so
    assert consensus["base_rate"] == pytest.approx((au12 & b).mean())
    intensity = row(result, "AU6", "coders")  # AU6 coded 0-5 by both: interval alpha and ICC(3,1) too
    pair = np.stack([six["a"], six["b"]]).astype(float)
    assert intensity["alpha_intensity"] == pytest.approx(
        krippendorff.alpha(pair, level_of_measurement="interval")
    )
    assert intensity["icc"] == pytest.approx(stats.icc3(pair.T)) and 0 < intensity["icc"] < 1


def test_valence_and_arousal_against_a_coder(tmp_path):
    from scipy.stats import pearsonr
    from sklearn.metrics import mean_squared_error

    n = 120
    rng = np.random.default_rng(5)
    valence = np.sin(np.linspace(0, 6, n))  # fatools' valence; its arousal is 0 throughout
    records = write_records(tmp_path / "frames.jsonl", {"AU12": np.full(n, 0.2)}, valence=valence)
    coded = 0.8 * valence + 0.1 + rng.normal(0, 0.1, n)
    arousal = rng.uniform(-0.5, 0.5, n)
    pd.DataFrame({"frame": np.arange(n), "valence": coded, "arousal": arousal}).to_csv(
        tmp_path / "va.csv", index=False
    )
    result = agree(records, {"va": [tmp_path / "va.csv"]}, resamples=200)
    v = row(result, "valence")
    ccc = (
        2
        * np.cov(coded, valence, bias=True)[0, 1]
        / (coded.var() + valence.var() + (coded.mean() - valence.mean()) ** 2)
    )
    assert v["ccc"] == pytest.approx(ccc) and v["pearson"] == pytest.approx(pearsonr(coded, valence)[0])
    assert v["rmse"] == pytest.approx(np.sqrt(mean_squared_error(coded, valence)))
    assert v["ccc_lo"] <= v["ccc"] <= v["ccc_hi"] and v["n"] == n
    a = row(result, "arousal")  # a constant rater: Pearson undefined (never 0), CCC 0 by its formula
    assert np.isnan(a["pearson"]) and a["ccc"] == pytest.approx(0.0)
    assert a["rmse"] == pytest.approx(np.sqrt(np.mean(arousal**2)))


def test_elan_as_a_coder_writes_it(clip, tmp_path):
    import pympi

    records, au12 = clip
    eaf = pympi.Elan.Eaf()
    eaf.add_linked_file(str(tmp_path / "clip.mp4"), mimetype="video/mp4")
    for tier in ("AU12", "FACS", "Expression"):
        eaf.add_tier(tier)
    eaf.add_annotation("AU12", 800, 1600, "C")  # frames 20-39
    eaf.add_annotation("AU12", 2400, 3200, "")  # frames 60-79, no intensity
    eaf.add_annotation("FACS", 1000, 2000, "6+12B")
    eaf.add_annotation("FACS", 4000, 4400, "43")  # a code fatools does not have
    eaf.add_annotation("Expression", 0, 4000, "happy")
    eaf.to_file(str(tmp_path / "coder.eaf"))
    coding = read_coding(tmp_path / "coder.eaf")[0]
    assert coding.unknown == {"AU43": 1} and coding.scale["AU12"] == "occurrence"
    assert set(coding.table.unit) == {"AU12", "AU6", "expression"}
    assert sorted(coding.table[coding.table.unit == "AU12"].value.dropna()) == [2.0, 3.0]
    result = agree(records, {"ann": [tmp_path / "coder.eaf"]}, resamples=0)
    assert result.alignment.iloc[0]["unknown_codes"] == {"AU43": 1}
    r = row(
        result, "AU12"
    )  # fatools' AU12: frames 20-39, 60-79, ...; the coder: 20-49 (merged with 6+12B), 60-79
    assert r["recall"] == pytest.approx(40 / 50) and r["base_rate"] == pytest.approx(50 / 200)
    expression = row(result, "expression")
    assert expression["n"] == 100 and expression["accuracy"] == pytest.approx(
        au12[:100].mean()
    )  # labelled 0-4 s
    assert result.confusion[("fatools", "ann")].loc["Happiness", "Neutral"] == 100 - au12[:100].sum()


def test_disfa_directory_with_protocol(clip, tmp_path):
    records, au12 = clip
    disfa = tmp_path / "disfa" / "SN001"
    disfa.mkdir(parents=True)
    levels = au12 * np.where(np.arange(len(au12)) % 40 < 30, 3, 1)  # intensity 1 falls below disfa-plus's 2
    (disfa / "SN001_au12.txt").write_text("".join(f"{i + 1},{v}\n" for i, v in enumerate(levels)))
    (disfa / "SN001_au6.txt").write_text("".join(f"{i + 1},0\n" for i in range(len(au12))))
    result = agree(records, {"disfa": [tmp_path / "disfa"]}, protocol="disfa-plus", resamples=0)
    r = row(result, "AU12")
    assert r["base_rate"] == pytest.approx((levels >= 2).mean())
    assert np.isfinite(r["icc"]) and np.isfinite(r["pearson"])
    assert set(result.table.unit) == {"AU12", "AU6", "AU4", "mean"} - {"AU4"}  # AU4 not coded


def test_disfa_counts_from_one_and_pyfeat_from_zero(clip, tmp_path):
    records, au12 = clip
    n = len(au12)
    (tmp_path / "SN001_au12.txt").write_text("".join(f"{i + 1},{3 * v}\n" for i, v in enumerate(au12)))
    pd.DataFrame({"frame": np.arange(n), "FaceRectX": 0, "AU12": au12 * 0.9}).to_csv(
        tmp_path / "fex.csv", index=False
    )
    disfa = {"disfa": [tmp_path / "SN001_au12.txt"]}
    for protocol in (None, "disfa-plus"):  # DISFA's 1 is the video's first frame, py-feat's 0, either way
        result = agree(records, disfa, {"pyfeat": [tmp_path / "fex.csv"]}, protocol=protocol, resamples=0)
        assert row(result, "AU12")["f1"] == 1.0 and row(result, "AU12", "pyfeat")["f1"] == 1.0
        report = result.alignment.set_index("source").reference_first_frame
        assert report["disfa"] == 1 and report["pyfeat"] == 0
    given = agree(records, disfa, {"pyfeat": [tmp_path / "fex.csv"]}, first_frame=0, resamples=0)
    report = given.alignment.set_index("source").reference_first_frame
    assert report["disfa"] == 0 and report["pyfeat"] == 0  # a coder's as given, a tool's its own
    assert (
        row(given, "AU12")["f1"] == row(given, "AU12", "pyfeat")["f1"] < 1.0
    )  # both against a shifted coder


def test_disfa_plus_trials_of_one_name_in_two_subjects(tmp_path):
    n, trial = 120, "A1_AU1_TrailNo_1"
    truth = {"SN001": blocks(n, 20), "SN003": blocks(n, 15)}
    roots = []
    for subject, au12 in truth.items():
        images = f"DISFAPlusDataset/Images/{subject}/{trial}"  # fa-run's records of the folder name it
        roots.append(
            write_records(
                tmp_path / subject / "frames.jsonl", {"AU12": np.where(au12, 0.9, 0.1)}, images
            ).parent
        )
        labels = tmp_path / "Labels" / subject / trial
        labels.mkdir(parents=True)
        (labels / "AU12.txt").write_text(
            "AU12\n" + "".join(f"{i:03d}.jpg     {3 * v}\n" for i, v in enumerate(au12))
        )
        (labels / "AU6.txt").write_text("".join(f"{i:03d}.jpg 0\n" for i in range(n)))
    result = agree(roots, {"plus": [tmp_path / "Labels"]}, protocol="disfa-plus", resamples=0)
    for subject in truth:  # each subject's labels with its own trial, though the trials share a name
        assert row(result, "AU12", video=f"{subject}/{trial}")["f1"] == 1.0
    assert set(result.alignment.reference_first_frame) == {0} and set(
        result.alignment.formats.map(tuple)
    ) == {("disfa-plus",)}
    one = agree(roots[1], {"plus": [tmp_path / "Labels"]}, resamples=0)  # one trial, the whole Labels folder
    assert row(one, "AU12")["f1"] == 1.0 and row(one, "AU12")["base_rate"] == pytest.approx(
        truth["SN003"].mean()
    )


def test_each_file_goes_to_the_video_named_longest_like_it(tmp_path):
    truth = {"v1": blocks(80, 10), "v10": blocks(80, 16)}
    roots = []
    for name, au12 in truth.items():
        records = write_records(
            tmp_path / name / "frames.jsonl", {"AU12": np.where(au12, 0.9, 0.1)}, f"{name}.mp4"
        )
        roots.append(records.parent)
        pd.DataFrame({"frame": np.arange(80), "AU12": au12}).to_csv(tmp_path / f"{name}_ann.csv", index=False)
    refs = {"ann": [tmp_path / "v1_ann.csv", tmp_path / "v10_ann.csv"]}
    result = agree(roots, refs, resamples=0)
    assert row(result, "AU12", video="v1")["f1"] == row(result, "AU12", video="v10")["f1"] == 1.0


def test_bp4d_unknown_and_fps_mismatch(clip, tmp_path):
    records, au12 = clip
    n = len(au12)
    fine = np.repeat(au12, 2)  # coded at 50 fps: every other reference frame is not sampled by fatools
    table = pd.DataFrame({"0": np.arange(2 * n + 20) + 1, "12": np.concatenate([fine, np.zeros(20, int)])})
    table.loc[:9, "12"] = 9  # unknown
    table.to_csv(tmp_path / "F001_T1.csv", index=False)
    result = agree(
        records, {"bp4d": [tmp_path / "F001_T1.csv"]}, reference_fps=50, first_frame=1, resamples=0
    )
    report = result.alignment.iloc[0]
    assert (
        report["reference_samples_not_sampled"] == n + 20 and report["fatools_frames_without_reference"] == 0
    )
    assert "longer" in report["extent"]
    r = row(result, "AU12")
    assert r["n"] == n - 5 and r["f1"] == 1.0  # the 10 unknown reference frames cover 5 sampled frames


def test_overlapping_intervals_and_valence(tmp_path):
    n = 100
    records = write_records(
        tmp_path / "frames.jsonl", {"AU12": np.full(n, 0.9)}, valence=np.linspace(-1, 1, n)
    )
    (tmp_path / "iv.csv").write_text("onset,offset,code,intensity\n0,2,AU12,B\n1,3,12,D\n3.5,4,AU99,\n")
    result = agree(records, {"iv": [tmp_path / "iv.csv"]}, resamples=0)
    assert result.alignment.iloc[0]["overlapping_intervals"] == 1
    assert result.alignment.iloc[0]["unknown_codes"] == {"AU99": 1}
    assert row(result, "AU12")["base_rate"] == pytest.approx(75 / 100)


def test_statistics_against_libraries_and_by_hand():
    import pingouin
    from scipy.stats import pearsonr
    from sklearn.metrics import confusion_matrix, f1_score

    # Shrout and Fleiss (1979), table 2: ICC(3,1) = 0.71.
    sf = np.array(
        [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float
    )
    assert stats.icc3(sf) == pytest.approx(0.7148, abs=1e-3)
    long = pd.DataFrame([(i, j, sf[i, j]) for i in range(6) for j in range(4)], columns=["t", "r", "s"])
    icc = pingouin.intraclass_corr(long, targets="t", raters="r", ratings="s").set_index("Type")
    name = (
        "ICC(C,1)" if "ICC(C,1)" in icc.index else "ICC3"
    )  # pingouin 0.7 renamed ICC3 (consistency, single)
    assert stats.icc3(sf) == pytest.approx(icc.loc[name, "ICC"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    y2 = x * 0.5 + y
    fig = stats.continuous(x, y2)
    assert fig["pearson"] == pytest.approx(pearsonr(x, y2)[0])
    ccc = 2 * np.cov(x, y2, bias=True)[0, 1] / (x.var() + y2.var() + (x.mean() - y2.mean()) ** 2)
    assert fig["ccc"] == pytest.approx(ccc)
    sums = stats.pair_from_sums(stats.pair_sums(x, y2))
    assert all(float(sums[k]) == pytest.approx(fig[k]) for k in ("icc", "pearson", "mae", "rmse", "ccc"))
    assert stats.continuous([1, 2, 3], [1, 2, 3])["ccc"] == pytest.approx(1.0)
    a = np.array(list("aabbcc")), np.array(list("abbbcd"))
    out = stats.expressions(*a, ["a", "b", "c", "d"])
    assert out["macro_f1"] == pytest.approx(f1_score(*a, average="macro"))
    assert (out["confusion"] == confusion_matrix(*a, labels=["a", "b", "c", "d"])).all()
    assert float(stats.expr_from_confusion(out["confusion"])["macro_f1"]) == pytest.approx(out["macro_f1"])
    # Events by hand: reference 1.0-2.0 and 3.0-4.0; rater 1.2-2.0 only.
    s = stats.event_sums([(1.0, 2.0), (3.0, 4.0)], [(1.2, 2.0)], 0.25)
    assert list(s) == [1, 1, 1, 1, 2] and float(stats.events_from_sums(s)["event_f1"]) == pytest.approx(2 / 3)


def test_threshold_best_is_tuned_on_the_other_half(tmp_path):
    rng = np.random.default_rng(3)
    roots, refs = [], {}
    for v in range(4):
        truth = blocks(120, 15, v)
        score = np.where(truth, rng.uniform(0.32, 0.6, 120), rng.uniform(0.0, 0.28, 120))
        roots.append(
            write_records(tmp_path / f"v{v}" / "frames.jsonl", {"AU12": score}, video=f"v{v}.mp4").parent
        )
        pd.DataFrame({"frame": np.arange(120), "AU12": truth}).to_csv(tmp_path / f"v{v}.csv", index=False)
        refs.setdefault("a", []).append(tmp_path / f"v{v}.csv")
    default = row(agree(roots, refs, resamples=0), "AU12")
    best = row(agree(roots, refs, threshold="best", resamples=200), "AU12")
    low, high = (float(x) for x in best["threshold"].split("/"))
    assert 0.28 <= low <= 0.32 and 0.28 <= high <= 0.32
    assert best["f1"] == 1.0 > default["f1"] and best["f1_lo"] <= 1.0
    assert len(agree(roots, refs, resamples=0).table.query("video != 'all' and unit == 'AU12'")) == 4


def test_pyfeat_and_openface_as_raters(clip, tmp_path):
    records, au12 = clip
    n = len(au12)
    pd.DataFrame({"frame": np.arange(n), "AU12": au12}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(
        {
            "frame": np.arange(n),
            "FaceRectX": 0,
            "AU12": np.where(au12, 0.9, 0.1),
            "happiness": 0.5,
            "neutral": 0.2,
        }
    ).to_csv(tmp_path / "fex.csv", index=False)
    pd.DataFrame(
        {
            "frame": np.arange(n) + 1,
            " face_id": 0,
            " timestamp": np.arange(n) / FPS,
            " confidence": 0.9,
            " success": 1,
            " AU12_r": au12 * 2.0,
            " AU12_c": 1 - au12,
        }
    ).to_csv(tmp_path / "of.csv", index=False)
    result = agree(
        records,
        {"a": [tmp_path / "a.csv"]},
        {"pyfeat": [tmp_path / "fex.csv"], "openface": [tmp_path / "of.csv"]},
        resamples=0,
    )
    assert row(result, "AU12", "pyfeat")["f1"] == 1.0 and row(result, "AU12", "openface")["f1"] == 0.0


def test_a_tool_that_skipped_frames(clip, tmp_path):
    records, au12 = clip  # fatools: every frame; py-feat: every 5th (skip_frames=5), frames from 0
    frames = np.arange(0, len(au12), 5)
    pd.DataFrame({"frame": frames, "FaceRectX": 0, "AU12": au12[frames] * 0.9}).to_csv(
        tmp_path / "fex.csv", index=False
    )
    pd.DataFrame({"frame": np.arange(len(au12)), "AU12": au12}).to_csv(tmp_path / "a.csv", index=False)
    result = agree(records, {"a": [tmp_path / "a.csv"]}, {"pyfeat": [tmp_path / "fex.csv"]}, resamples=0)
    report = result.alignment.set_index("source").loc["pyfeat"]
    assert report["reference_period_s"] == pytest.approx(0.2) and report["extent"] == "same length"
    # The frames it skipped are left out and counted, not given a neighbour's value.
    assert report["fatools_frames_without_reference"] == len(au12) - len(frames)
    pooled = row(result, "AU12", "pyfeat")
    assert pooled["n"] == len(frames) and pooled["f1"] == 1.0


def test_cli(clip, tmp_path):
    from fatools.cli.agree import cli

    records, au12 = clip
    pd.DataFrame({"frame": np.arange(len(au12)), "AU12": au12}).to_csv(tmp_path / "a.csv", index=False)
    out = tmp_path / "t.csv"
    ok = CliRunner().invoke(
        cli,
        [
            str(records.parent),
            "-r",
            f"ann={tmp_path / 'a.csv'}",
            "-o",
            str(out),
            "--json-file",
            str(tmp_path / "t.json"),
            "--resamples",
            "50",
            "--aus",
            "12",
        ],
    )
    assert ok.exit_code == 0, ok.output
    table = pd.read_csv(out)
    assert set(table.unit) == {"AU12", "mean"} and "main track" in ok.output
    assert json.loads((tmp_path / "t.json").read_text())["alignment"][0]["source"] == "ann"
    missing = CliRunner().invoke(cli, [str(records), "-r", str(tmp_path / "a.csv"), "--track", "5"])
    assert missing.exit_code == 1 and "no track 5" in missing.output
    bad = CliRunner().invoke(cli, [str(records), "-r", str(tmp_path / "a.csv"), "--threshold", "high"])
    assert bad.exit_code == 2
