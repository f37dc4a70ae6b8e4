"""fa-run over many inputs: one output directory each, a run record in each, fault
isolation, resume after a kill, and a lock against a second process.

Each output directory holds ``run.json`` (``run_record``): the input (path, size, a
content fingerprint), the options that change results and their fingerprint, the
models and their sha256, versions, device, host, times, status (``running``,
``complete``, ``partial``, ``failed`` with its error), frames done, the files written,
the study design's row for the input (``design``, with fa-run --design) and how many runs made the result (``attempts``) and what the last one kept of the
earlier ones' records (``resumed_from``; null when it kept nothing).

Running the same command again (``plan``):

* complete, same input, options and models: skipped (the exports asked for that are
  not there yet are written from its records, without the models);
* started (``partial``, ``failed``, or ``running`` from a killed process), same
  identity: resumed from its records file (``VideoAnalyzer.analyze(resume=True)``);
* made from another input, other options or other models: refused, naming what
  differs, unless ``--force``, which redoes it from nothing (its old files removed).

The batch sits on top of the pipeline, never inside it: it only decides, for each input,
what ``VideoAnalyzer.analyze`` is asked to do, and records what happened.  What is in
the directory, under which names, and every write into it (the lock, removal, the run
record's file) are ``fatools.study.outdir``'s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fatools.errors import FatoolsError, Interrupted
from fatools.live import is_live
from fatools.models.request import Resolution, resolve
from fatools.run import Resumed, RunOptions, VideoAnalyzer
from fatools.signals import StopSignals
from fatools.study import outdir
from fatools.study.inputs import Input, fingerprint
from fatools.versions import package_versions

log = logging.getLogger("fatools")

SCHEMA = 1


class RefusedError(FatoolsError):
    """The output directory holds results made another way; --force redoes them."""


@dataclass
class Outcome:
    input: Input
    out: str
    status: str  # "analysed", "resumed", "exported", "skipped" or "failed"
    error: str | None = None
    files: list[str] | None = None


# -- identity -----------------------------------------------------------------------


def results_options(options: RunOptions, item: Input, resolution: Resolution) -> dict:
    """The options that change an input's records, summary or exports' content (not batch
    sizes, device, backend, progress or where models live: device and backend move
    outputs by float rounding only, within 1e-4); the detector and the configuration's
    sha256 are the resolution's (what runs, from its one reading of the configuration)."""
    predict = asdict(options.predict)
    predict.pop("face_batch", None)
    predict.pop("backend", None)
    detect = asdict(options.detect)
    detect.pop("backend", None)
    results = {
        "sampling": asdict(options.sampling_for(item.path)),
        "detector": resolution.detector,
        "detect": detect,
        "predict": predict,
        "track": asdict(options.track),
        "summary": asdict(options.summary),
        "config_sha256": resolution.config_sha256,
    }
    return json.loads(json.dumps(results))  # as run.json holds them (tuples are lists there)


def options_fingerprint(results: dict) -> str:
    return hashlib.sha256(json.dumps(results, sort_keys=True).encode()).hexdigest()[:16]


def run_record(item: Input, options: RunOptions, resolution: Resolution, **fields: Any) -> dict:
    """run.json for ``item`` analysed with ``options`` and the models ``resolution`` names
    (the name and sha256 of each: what a result depends on)."""
    results = results_options(options, item, resolution)
    record = {
        "schema": SCHEMA,
        "type": "run",
        "input": {"path": item.path, "kind": item.kind, **fingerprint(item)},
        "options": results,
        "options_fingerprint": options_fingerprint(results),
        "models": resolution.hashes(),
        "versions": package_versions(),
        "device": options.device,
        "backend": options.predict.backend,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    record.update(fields)
    return record


def differences(previous: dict, current: dict) -> list[str]:
    """What makes a previous run's results not this run's: its input, options or models."""
    why = []
    for key, name in (
        (("input", "sha256_sampled"), "the input's content"),
        (("input", "size"), "the input's size"),
    ):
        if previous.get(key[0], {}).get(key[1]) != current[key[0]][key[1]] and name not in why:
            why.append(name)
    if previous.get("options_fingerprint") != current["options_fingerprint"]:
        changed = sorted(
            k for k in current["options"] if previous.get("options", {}).get(k) != current["options"][k]
        )
        why.append(f"options ({', '.join(changed) or 'fingerprint'})")
    if previous.get("models") != current["models"]:
        why.append("models")
    return sorted(set(why), key=why.index)


def plan(previous: dict | None, current: dict, formats: tuple[str, ...], force: bool) -> str:
    """fresh, resume, export, skip or refuse (see the module's description)."""
    if previous is None:
        return "resume"  # a records file without a run record still resumes (its lines are checked)
    if differences(previous, current):
        return "fresh" if force else "refuse"
    if previous.get("status") == "complete":
        done = set(previous.get("formats") or [])
        return "skip" if set(formats) <= done else "export"
    return "resume"


# -- the batch ----------------------------------------------------------------------


def run_batch(
    items: list[Input],
    dirs: list[str],
    options: RunOptions,
    *,
    force: bool = False,
    fail_fast: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
    assets_dir: str | None = None,
    design: dict[str, dict] | None = None,
) -> list[Outcome]:
    """Analyse every input into its directory, each on its own: a failure is recorded and
    the next goes on (``fail_fast`` stops there).  The models load once, and only when
    some input needs them.  ``assets_dir`` (the results tree's root) holds the assets the
    inputs' pages share.  ``design`` (fa-run --design): each input path's design record
    (the table and its row), kept in run.json as ``design``; not part of the options'
    fingerprint (a corrected design table is no reason to analyse again: a skipped or
    re-exported result gets the new row).  Raises Interrupted when a signal stopped the
    batch."""
    from fatools.export.formats import DEFAULT_FORMATS

    formats = options.formats or DEFAULT_FORMATS
    resolution = resolve(options.model_request)  # the models checked, none loaded
    analyzer: VideoAnalyzer | None = None
    outcomes: list[Outcome] = []
    with StopSignals("stopping at the next record (the records so far are kept)") as stop:
        for item, out_dir in zip(items, dirs, strict=True):
            out = Path(out_dir)
            try:
                with outdir.locked(out):
                    row = {} if design is None else {"design": design.get(str(item.path))}
                    current = run_record(item, options, resolution, **row)
                    previous = outdir.read_record(out)
                    # A live input is a new run each time: never skipped, resumed or refused.
                    action = (
                        "fresh"
                        if is_live(item.path, options.live)
                        else plan(previous, current, formats, force)
                    )
                    if action == "refuse" and previous is not None:
                        raise RefusedError(
                            f"{out}: holds results of another run (differs in: "
                            f"{', '.join(differences(previous, current))}); give --force to redo it, "
                            "or another -o"
                        )
                    if previous is not None and row and previous.get("design") != row["design"]:
                        previous = {**previous, **row}
                        if action == "skip":
                            outdir.write_record(out, previous)
                    if action == "skip" and previous is not None:
                        log.info("%s: complete in %s; skipped", item.path, out)
                        outcome = Outcome(item, out_dir, "skipped", files=previous.get("files"))
                    elif action == "export" and previous is not None:
                        outcome = _export_only(item, out, options, resolution, previous, formats, assets_dir)
                    else:
                        if action == "fresh" or (previous is None and not outdir.resumable(out)):
                            outdir.remove_results(out, previous)
                        if analyzer is None:
                            analyzer = VideoAnalyzer(options)
                        outcome = _analyze(
                            analyzer,
                            item,
                            out,
                            current,
                            formats,
                            stop,
                            assets_dir,
                            None if action == "fresh" else previous,
                        )
            except Interrupted:
                raise
            except (FatoolsError, OSError, RuntimeError, ValueError) as exc:
                message = str(exc) if isinstance(exc, FatoolsError) else f"{type(exc).__name__}: {exc}"
                if not message.startswith(item.path):
                    message = f"{item.path}: {message}"
                outcome = Outcome(item, out_dir, "failed", message)
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
            if stop.signum and is_live(item.path, options.live):
                raise Interrupted(stop.signum)  # the live run ended cleanly, its outputs written
            if outcome.status == "failed" and fail_fast:
                break
    return outcomes


def resume_fields(earlier: dict | None, resumed: Resumed | None) -> dict:
    """run.json's ``attempts`` and ``resumed_from`` for a run that kept ``resumed`` of the
    records ``earlier`` (the run record the stopping run left, or None) says how many runs
    made: each resume adds one, a run that keeps nothing is attempt 1."""
    if resumed is None:
        return {"attempts": 1, "resumed_from": None}
    attempts = (earlier or {}).get("attempts")
    # A records file without a run record, or one from before runs counted: one run at least.
    attempts = attempts if isinstance(attempts, int) and attempts >= 1 else 1
    return {
        "attempts": attempts + 1,
        "resumed_from": {"frame": resumed.frame, "t": resumed.t, "frames_kept": resumed.frames},
    }


def _analyze(
    analyzer: VideoAnalyzer,
    item: Input,
    out: Path,
    current: dict,
    formats: tuple[str, ...],
    stop: StopSignals,
    assets_dir: str | None = None,
    previous: dict | None = None,
) -> Outcome:
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    # Until the analysis says whether it keeps them, the records on disk are the earlier
    # runs': a kill before that must leave their count for the next run to add to.
    earlier = previous if outdir.resumable(out) else None
    resume = {"attempts": 1, "resumed_from": None}
    if earlier is not None:
        resume = {"attempts": earlier.get("attempts", 1), "resumed_from": earlier.get("resumed_from")}

    def written(status: str, **fields: Any) -> None:
        outdir.write_record(
            out,
            {
                **current,
                "status": status,
                "started": started,
                **resume,
                "frames_done": outdir.frames_done(out),
                "formats": list(formats),
                **fields,
            },
        )

    def on_start(resumed: Resumed | None) -> None:
        resume.update(resume_fields(earlier, resumed))
        written("running", ended=None, error=None, files=[])

    written("running", ended=None, error=None, files=[])
    try:
        result = analyzer.analyze(
            item.path, out, resume=True, should_stop=stop, assets_dir=assets_dir, on_start=on_start
        )
    except BaseException as exc:
        status = "partial" if isinstance(exc, (Interrupted, KeyboardInterrupt)) else "failed"
        error = (
            None
            if status == "partial"
            else (str(exc) if isinstance(exc, FatoolsError) else f"{type(exc).__name__}: {exc}")
        )
        written(status, ended=datetime.now(timezone.utc).isoformat(timespec="seconds"), error=error, files=[])
        raise
    files = [str(p) for p in result.paths()]
    written(
        "complete", ended=datetime.now(timezone.utc).isoformat(timespec="seconds"), error=None, files=files
    )
    return Outcome(
        item, str(out), "resumed" if resume["resumed_from"] is not None else "analysed", files=files
    )


def _export_only(
    item: Input,
    out: Path,
    options: RunOptions,
    resolution: Resolution,
    previous: dict,
    formats: tuple[str, ...],
    assets_dir: str | None = None,
) -> Outcome:
    """The exports a complete result lacks, from its records (no model loads); the old
    exports go, so that every file in the directory comes from the same records."""
    from fatools.export import Export
    from fatools.records import read_paths

    summary = outdir.read_summary(out)
    outdir.remove_exports(out, previous)
    exporter = Export(
        out,
        formats,
        expression_labels=resolution.expression_labels,
        min_quality=options.summary.min_quality,
        assets_dir=assets_dir,
    )
    try:
        for record in read_paths([str(out / outdir.RECORDS)]):
            exporter.add(record)
    except BaseException:
        exporter.abort()
        raise
    result = exporter.finish(summary, {"video_path": item.path, "models": previous.get("models")})
    files = [str(p) for p in result.paths()] + [str(out / outdir.RECORDS), str(out / outdir.SUMMARY)]
    outdir.write_record(
        out,
        {
            **previous,
            "formats": list(formats),
            "files": files,
            "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    log.info("%s: complete in %s; wrote the exports it lacked (%s)", item.path, out, ", ".join(formats))
    return Outcome(item, str(out), "exported", files=files)


def report(outcomes: list[Outcome], total: int) -> str:
    """The one line fa-run ends with."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    done = counts.get("analysed", 0) + counts.get("resumed", 0)
    parts = [f"{done} analysed"]
    if counts.get("resumed"):
        parts[0] += f" ({counts['resumed']} resumed)"
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']} skipped (complete)")
    if counts.get("exported"):
        parts.append(f"{counts['exported']} re-exported")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        parts.append(f"{len(failed)} failed: " + ", ".join(o.input.path for o in failed))
    if len(outcomes) < total:
        parts.append(f"{total - len(outcomes)} not started (--fail-fast)")
    return ", ".join(parts)
