"""fa-run: frames, detection, predictions, tracks, summary and exports in one process,
over one input or a whole study."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from fatools.cli import options

if TYPE_CHECKING:
    from fatools.serve import LiveServer
    from fatools.summary import SummaryOptions


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, type=click.Path(allow_dash=True))
@click.option(
    "--from",
    "from_lists",
    multiple=True,
    type=click.Path(allow_dash=True),
    metavar="FILE",
    help="Also analyse the paths listed in FILE, one per line ('-': standard input); repeatable.",
)
@options.output_dir_option("fa-run")
@click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="Analyse only shard K (0 to N-1) of N: N runs with the same inputs cover each exactly once "
    "(for array jobs).",
)
@options.force_option
@click.option(
    "--fail-fast",
    is_flag=True,
    help="Stop at the first input that fails (else it is recorded and the next goes on).",
)
@options.sampling_options("fa-run")
@options.detector_options
@options.facetorch_exact_option
@options.prediction_options
@options.track_gap_option("fa-run")
@options.summary_options("fa-run")
@options.design_options
@options.formats_option
@options.progress_option
@options.model_options
@options.int8_option
@options.bf16_option
@options.detect_batch_option("fa-run")
@options.frame_batch_option("fa-run")
@options.face_batch_option
@options.runtime_options
@options.live_options("fa-run")
@click.option(
    "--checkpoint",
    default=None,
    metavar="DURATION",
    help="Live input: rewrite summary.json (atomically) this often while the run goes on (60s, 5m).",
)
@options.serve_option
@options.command("fa-run")
def cli(
    inputs: tuple[str, ...],
    from_lists: tuple[str, ...],
    output_dir: str,
    shard: str | None,
    force: bool,
    fail_fast: bool,
    threads: int | None,
    design_path: str | None,
    participant_from: str | None,
    allow_partial: bool,
    input_format: str | None,
    input_options: tuple[str, ...],
    no_drop: bool,
    reconnect: int,
    stall_timeout: str,
    live_duration: str | None,
    checkpoint: str | None,
    serve: tuple[str, int] | None,
    **values: Any,
) -> None:
    """Analyse videos, images or folders of them in one process; write every result into
    a directory.

    Runs the same code as fa-frames | fa-detect | fa-predict | fa-track | fa-summarize |
    fa-export, without serialising between stages: a thread decodes while the models
    run. Each input gets its own directory (the output directory itself for a single
    input) with frames.jsonl, summary.json, the exports and run.json, the record of the
    run. Running the same command again skips what is complete and resumes what a kill
    stopped. Samples every 5th frame of a video and every image unless --every or --fps
    says otherwise. Exit 1 when an input failed (the others are analysed); see fa-run(1).
    """
    import os

    from fatools.errors import FatoolsError, Interrupted
    from fatools.export.formats import DEFAULT_FORMATS
    from fatools.live import is_live, parse_duration
    from fatools.run import run_options
    from fatools.study import batch
    from fatools.study.inputs import Input, expand, layout, parse_shard, read_list
    from fatools.study.inputs import shard as shard_of

    live = options.live_from(input_format, input_options, no_drop, reconnect, stall_timeout, live_duration)
    try:
        values["checkpoint"] = parse_duration(checkpoint)
    except ValueError as exc:
        raise click.UsageError(f"--checkpoint {exc}") from None
    values["live"] = live
    paths = list(inputs) + [path for source in from_lists for path in read_list(source)]
    if not paths:
        raise click.UsageError("give inputs (videos, images, folders) or --from FILE")
    if any(is_live(path, live) for path in paths):
        if len(paths) != 1:
            raise click.UsageError("a live input (-, a URL, a device) is analysed on its own; give it alone")
        items = [Input(paths[0], "video")]
    else:
        items = expand(paths)  # every input checked before any model loads
    for item in items:
        options.refuse_clock_for_stills(
            item.path, item.kind, values["sample_fps"], values["start"], values["end"]
        )
    design = None
    if design_path or participant_from:
        design = check_design(
            design_path, participant_from, allow_partial, [str(item.path) for item in items]
        )
    dirs = layout(items, output_dir)
    shared = output_dir if dirs != [output_dir] else None  # one plotly.min.js for the tree's pages
    if shard is not None:
        try:
            k, n = parse_shard(shard)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        chosen = shard_of([str(item.path) for item in items], k, n)
        items, dirs = [items[i] for i in chosen], [dirs[i] for i in chosen]
    values["fps"] = values.pop("sample_fps")
    try:
        run = run_options(**values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    options.apply_threads(threads)
    server = live_page(serve, run.summary)
    if server is not None:
        run = replace(run, observer=server.page)

    def printed(outcome: batch.Outcome) -> None:
        if outcome.status in ("analysed", "resumed", "exported"):
            for path in outcome.files or []:
                click.echo(path)
        elif outcome.status == "skipped":
            click.echo(
                f"fa-run: {outcome.input.path}: complete in {outcome.out} (same input, options and models); "
                "skipped",
                err=True,
            )
        elif outcome.status == "failed" and len(items) > 1:
            click.echo(f"fa-run: failed: {outcome.error}", err=True)

    ended = "failed"
    try:
        outcomes = batch.run_batch(
            items,
            dirs,
            run,
            force=force,
            fail_fast=fail_fast,
            on_done=printed,
            assets_dir=shared,
            design=design,
        )
        ended = "complete" if all(o.status != "failed" for o in outcomes) else "failed"
    except Interrupted as exc:
        ended = "stopped"
        click.echo(f"fa-run: {exc}", err=True)
        sys.exit(128 + exc.signum)
    finally:
        if server is not None:
            server.close(ended)
    failed = [o for o in outcomes if o.status == "failed"]
    if shared is not None and "html" in (run.formats or DEFAULT_FORMATS):
        from fatools.study.index import write_index

        try:
            index = write_index([output_dir], os.path.join(output_dir, "index.html"))
            click.echo(index)
        except OSError as exc:
            click.echo(f"fa-run: {output_dir}: cannot write index.html ({exc.strerror})", err=True)
    if len(items) == 1 and failed:
        raise FatoolsError(failed[0].error)  # one input: its one-line error, as every command
    if len(items) != 1:
        click.echo(f"fa-run: {batch.report(outcomes, len(items))}", err=True)
    if failed:
        sys.exit(1)


def check_design(
    design_path: str | None, participant_from: str | None, allow_partial: bool, inputs: list[str]
) -> dict[str, dict]:
    """The design checked against every input (all shards') before any model loads; each
    input's design record for its run.json (fa-collect joins the design to the results:
    give it --design there too)."""
    from fatools.study import design

    try:
        table = design.load(design_path, participant_from)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    assert table is not None
    found = design.validate(
        table, inputs, allow_partial, lambda line: click.echo(f"fa-run: warning: {line}", err=True)
    )
    return {path: design.record(table, found.get(path)) for path in inputs}


def live_page(address: tuple[str, int] | None, summary: SummaryOptions) -> LiveServer | None:
    """fa-run --serve's server, listening (None without the option); its URL on stderr."""
    if address is None:
        return None
    from fatools.export.live_page import LivePage
    from fatools.serve import LiveServer

    server = LiveServer(LivePage(summary), *address).start()
    click.echo(f"fa-run: live page at {server.url} (no authentication)", err=True)
    return server


def main() -> None:
    options.run_command(cli, "fa-run")
