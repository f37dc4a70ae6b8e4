"""Options shared by the fa-* commands, defined once as click decorators (after cligj).

``command`` wraps a click command with the conventions every tool follows: logs on
stderr, exit 1 with a one-line message on runtime errors (a traceback only with
``--debug``), exit 2 on usage errors (click's own), and a quiet end on a broken pipe.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from fatools.errors import FatoolsError
from fatools.versions import __version__

if TYPE_CHECKING:
    from fatools.live import LiveOptions
    from fatools.summary import SummaryOptions
    from fatools.video import Sampling

log = logging.getLogger("fatools")


def _configure_logging(prog: str, verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    if quiet:
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
    root = logging.getLogger("fatools")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def version_option(prog: str) -> Callable[[Any], Any]:
    """--version: "fa-run (fatools) 0.2.0", from fatools.versions alone (no torch, no metadata)."""
    return click.version_option(
        __version__,
        "--version",
        prog_name=prog,
        message="%(prog)s (fatools) %(version)s",
        help="Show the version and exit.",
    )


def command(prog: str, version: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command body the shared verbosity/debug options, --version and error handling.

    ``version=False`` for a group's subcommands (fa-models list): the group has --version.
    """

    def decorate(body: Callable[..., Any]) -> Callable[..., Any]:
        @(version_option(prog) if version else (lambda f: f))
        @click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
        @click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
        @click.option("--debug", is_flag=True, help="Show a full traceback on errors.")
        @functools.wraps(body)
        def wrapper(*args: Any, verbose: int, quiet: bool, debug: bool, **kwargs: Any) -> Any:
            _configure_logging(prog, verbose, quiet)
            try:
                return body(*args, **kwargs)
            except BrokenPipeError:
                # Let click end it the Unix way: quietly, no traceback.
                raise
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except KeyboardInterrupt:
                click.echo(f"{prog}: interrupted", err=True)
                sys.exit(130)
            except FatoolsError as exc:
                if debug:
                    raise
                click.echo(f"{prog}: error: {exc}", err=True)
                sys.exit(1)
            except Exception as exc:
                if debug:
                    raise
                click.echo(
                    f"{prog}: error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
                    err=True,
                )
                sys.exit(1)

        return wrapper

    return decorate


on_error_option = click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="On a bad record or an unreadable frame: stop with an error, or log it to stderr and go on.",
)

records_argument = click.argument("inputs", nargs=-1, type=click.Path(allow_dash=True))

device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Torch device: auto (cuda if available, else cpu), cpu, cuda or cuda:N.",
)

# Old spellings kept as aliases because scripts rely on them; each meant something
# different on different commands, which is why the canonical names replaced them.
# --output and --sample-rate are the seed tool's names (its --sample-rate: every Nth
# frame), taken by every command that has the option they name.
LEGACY_ALIASES: dict[str, dict[str, str]] = {
    "--max-gap": {
        "fa-track": "--track-gap",
        "fa-run": "--track-gap",
        "fa-summarize": "--episode-gap",
        "fa-export": "--episode-gap",
    },
    "--batch-size": {
        "fa-detect": "--detect-batch",
        "fa-run": "--detect-batch",
        "fa-predict": "--frame-batch",
    },
    "--output": {"fa-run": "--output-dir"},
    "--sample-rate": {"fa-frames": "--every", "fa-run": "--every"},
}


def _names(prog: str, canonical: str) -> list[str]:
    """``canonical`` and the legacy aliases ``prog`` keeps for it."""
    return [canonical] + [old for old, by_prog in LEGACY_ALIASES.items() if by_prog.get(prog) == canonical]


def detect_batch_option(prog: str) -> Callable[[Any], Any]:
    return click.option(
        *_names(prog, "--detect-batch"),
        "detect_batch",
        type=click.IntRange(min=1),
        default=None,
        help="Frames per detector batch [default: chosen per model and device: 1 on CPU, 16 on CUDA].",
    )


def frame_batch_option(prog: str) -> Callable[[Any], Any]:
    return click.option(
        *_names(prog, "--frame-batch"),
        "frame_batch",
        type=click.IntRange(min=1),
        default=None,
        help="Frames whose faces go through the predictors together [default: 8 on CPU, 32 on CUDA].",
    )


face_batch_option = click.option(
    "--face-batch",
    type=click.IntRange(min=1),
    default=None,
    help="Faces per predictor batch, for every predictor [default: chosen per model and device].",
)


def track_gap_option(prog: str) -> Callable[[Any], Any]:
    return click.option(
        *_names(prog, "--track-gap"),
        "track_gap",
        type=click.FloatRange(min=0),
        default=2.0,
        show_default=True,
        help="Seconds a track may go unseen and still be continued; a face seen later starts a new track.",
    )


def output_dir_option(prog: str) -> Callable[[Any], Any]:
    return click.option(
        "-o",
        *_names(prog, "--output-dir"),
        "output_dir",
        required=True,
        type=click.Path(file_okay=False),
        help="Directory to write into (created if missing).",
    )


force_option = click.option(
    "--force",
    is_flag=True,
    help="Redo what is already there (fa-models fetch: download again; fa-models prepare: export again; fa-run: "
    "redo outputs made from another input, with other options or other models, which are refused otherwise).",
)

threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for the models, OpenCV and decoding [default: the CPUs this process may use: its affinity, "
    "SLURM_CPUS_PER_TASK, the cgroup quota].",
)


def apply_threads(threads: int | None) -> None:
    """Give --threads (or the CPUs this process may use) to torch, OpenCV and the decoder."""
    from fatools import threads as cpu_threads

    count = cpu_threads.apply(threads)
    log.debug("using %d CPU threads", count)


facetorch_exact_option = click.option(
    "--facetorch-exact",
    is_flag=True,
    help="Detect and crop as facetorch's FaceAnalyzer.run does (frames padded to a square for the detector; faces "
    "cut from the detector input, 380 px unifier): outputs equal FaceAnalyzer.run within 1e-4.",
)


def _formats(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from fatools.export.formats import parse_formats

    try:
        return parse_formats(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


formats_option = click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    callback=_formats,
    metavar="FORMAT",
    help="json, csv, au-timeline, wide, text, plots, elan, webvtt, html, overlay, or all (the default: every one but "
    "overlay, which re-encodes the video); repeat or separate with commas.",
)

progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress line on stderr [default: when stderr is a terminal].",
)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Your own facetorch/OmegaConf YAML instead of the bundled configuration. A configuration is code "
    "(its _target_ entries are called): use only files you trust; see --trust-config.",
)

trust_config_option = click.option(
    "--trust-config",
    is_flag=True,
    help="Run a --config whose _target_ entries name code outside facetorch, fatools, torch and torchvision "
    "(refused otherwise, exit 1).",
)

verify_option = click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Check each model file against the sha256 its store recorded before loading it (a stat when the file's "
    "size and mtime are the recorded ones, a rehash otherwise); --no-verify loads the files as they are.",
)

models_dir_option = click.option(
    "--models-dir",
    type=click.Path(file_okay=False),
    envvar="FATOOLS_MODELS",
    default=None,
    help="Model store directory [env FATOOLS_MODELS; default: user cache dir].",
)


def input_paths(inputs: tuple[str, ...]) -> list[str]:
    """Record inputs given on the command line, standard input when none."""
    return list(inputs) if inputs else ["-"]


def run_command(cli: click.Command, prog: str) -> None:
    """Console-script entry: run ``cli`` as ``prog``, ending like a Unix filter on a closed pipe."""
    import signal

    # A reader that goes away (`fa-frames v.mp4 | head -1`) ends us by SIGPIPE, silently,
    # as it ends cat or grep; no BrokenPipeError traceback, no half-flushed buffer.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    cli(prog_name=prog)


def _compose(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(f: Any) -> Any:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def sampling_options(prog: str) -> Callable[[Any], Any]:
    """--every, --fps, --start, --end and --max-frames, with ``prog``'s aliases."""
    return _compose(
        click.option(
            *_names(prog, "--every"),
            "every",
            type=click.IntRange(min=1),
            default=None,
            help="Keep every Nth frame or image (counted from the first at or after --start) [default: every "
            "one; fa-run: every 5th frame of a video, every image]. --sample-rate is the seed tool's "
            "name for it (a step in frames, not a rate per second: that is --fps).",
        ),
        click.option(
            "--fps",
            "sample_fps",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Keep frames evenly in time, F per second, by container timestamps (correct on variable frame rate video).",
        ),
        click.option(
            "--start",
            type=click.FloatRange(min=0),
            default=0.0,
            show_default=True,
            help="First second to sample.",
        ),
        click.option("--end", type=click.FloatRange(min=0), default=None, help="Stop before this second."),
        click.option(
            "--max-frames",
            type=click.IntRange(min=1),
            default=None,
            help="Stop after K sampled frames per input.",
        ),
    )


def live_options(prog: str) -> Callable[[Any], Any]:
    """--input-format, --input-option, --no-drop, --reconnect, --stall-timeout and --duration:
    how a live source (standard input, a URL, a device) is read (fatools.live)."""
    return _compose(
        click.option(
            "--input-format",
            default=None,
            metavar="FORMAT",
            help="FFmpeg's input format or capture device: v4l2, avfoundation, dshow (webcams), mpegts, ... "
            "[default: FFmpeg guesses]. A device format makes the input live.",
        ),
        click.option(
            "--input-option",
            "input_options",
            multiple=True,
            metavar="KEY=VALUE",
            help="An FFmpeg option for the input (rtsp_transport=tcp, video_size=640x480, framerate=30, ...); "
            "repeatable.",
        ),
        click.option(
            "--no-drop",
            is_flag=True,
            help="Live input: analyse every sampled frame, however far behind (a warning says when the "
            "backlog grows) [default: the newest frame wins and the backlog is dropped, counted in "
            "each record's 'dropped'].",
        ),
        click.option(
            "--reconnect",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            metavar="N",
            help="Live input: reopen a stream that failed, stalled or ended up to N times in a row, with "
            "backoff; the first frame after carries 'reconnected' and 'gap'.",
        ),
        click.option(
            "--stall-timeout",
            default="10s",
            show_default=True,
            metavar="DURATION",
            help="Live network input: seconds without data after which the stream counts as dropped "
            "(reconnected with --reconnect, else the end).",
        ),
        click.option(
            "--duration",
            "live_duration",
            default=None,
            metavar="DURATION",
            help="Live input: stop this long after the first frame (90, 90s, 10m, 1h30m) and finish cleanly.",
        ),
    )


def _serve_address(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, int] | None:
    from fatools.serve import parse_address

    if value is None:
        return None
    try:
        return parse_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


serve_option = click.option(
    "--serve",
    default=None,
    metavar="[HOST:]PORT",
    callback=_serve_address,
    help="Serve a live page of the run at http://HOST:PORT/ while it goes on: the frame last analysed "
    "with its boxes, the timelines growing (HOST 127.0.0.1 unless given; 0.0.0.0: every interface; "
    "port 0: any free one). No authentication: whoever reaches the port sees the page.",
)


def live_from(
    input_format: str | None,
    input_options: tuple[str, ...],
    no_drop: bool,
    reconnect: int,
    stall_timeout: str,
    live_duration: str | None,
) -> LiveOptions:
    """The LiveOptions the live options describe (usage errors for bad values)."""
    from fatools.live import LiveOptions, parse_duration, parse_input_options

    try:
        stall = parse_duration(stall_timeout)
        assert stall is not None  # a text parses to seconds or raises ValueError
        return LiveOptions(
            input_format=input_format,
            input_options=parse_input_options(input_options),
            drop=not no_drop,
            reconnect=reconnect,
            stall_timeout=stall,
            duration=parse_duration(live_duration),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def refuse_clock_for_stills(
    path: str, kind: str, sample_fps: float | None, start: float, end: float | None
) -> None:
    """A usage error for --fps, --start or --end on an image or a folder of them (``kind``
    as ``study.inputs.input_kind`` says)."""
    if kind != "video" and (sample_fps is not None or start or end is not None):
        raise click.UsageError(f"{path}: --fps, --start and --end need a video; images have no clock")


def sampling_from(
    every: int | None, sample_fps: float | None, start: float, end: float | None, max_frames: int | None
) -> Sampling:
    """The Sampling the sampling options describe (usage errors for contradictions)."""
    from fatools.video import Sampling

    if every is not None and sample_fps is not None:
        raise click.UsageError("--every and --fps are alternatives; give one")
    if end is not None and end <= start:
        raise click.UsageError("--end must be after --start")
    return Sampling(every=every or 1, fps=sample_fps, start=start, end=end, max_frames=max_frames)


detector_options = _compose(
    # No click default: None lets a short-form --config's detector stand (the resolution of
    # the model request names it, models/request.py), which a given --detector replaces.
    click.option(
        "--detector",
        type=click.Choice(["retinaface", "retinaface-mnet"]),
        default=None,
        help="retinaface: facetorch's ResNet-50; retinaface-mnet: the MobileNet0.25 sibling, about 20x cheaper "
        "[default: the detector a short-form --config names, else retinaface].",
    ),
    click.option(
        "--det-size",
        type=click.IntRange(min=0),
        default=1080,
        show_default=True,
        help="Longer side of the detector input in pixels (facetorch: 1080); 0 keeps the original size.",
    ),
    click.option(
        "--score-threshold",
        type=click.FloatRange(0, 1),
        default=None,
        help="Keep faces scoring above this [default: the configuration's, 0.6].",
    ),
    click.option(
        "--min-face",
        type=click.FloatRange(min=0),
        default=0.0,
        show_default=True,
        help="Drop faces whose box is smaller than this many pixels on its shorter side.",
    ),
)


def parse_tasks(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    from fatools.predict import ALL_TASKS

    tasks = tuple(t.strip() for t in value.split(",") if t.strip())
    unknown = [t for t in tasks if t not in ALL_TASKS]
    if unknown or not tasks:
        raise click.BadParameter(
            f"unknown task {', '.join(unknown) or '(none)'}; choose from {', '.join(ALL_TASKS)}"
        )
    return tuple(dict.fromkeys(tasks))


prediction_options = _compose(
    click.option(
        "--tasks",
        default="au,fer,va,align",
        show_default=True,
        callback=parse_tasks,
        help="Comma-separated predictors: au, fer, va, align, embed.",
    ),
    click.option(
        "--au-threshold",
        type=click.FloatRange(0, 1),
        default=0.5,
        show_default=True,
        help="An action unit is active above this probability.",
    ),
)


events_option = click.option(
    "--events",
    "events",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="A CSV of the experiment's events (onset, offset or duration in seconds, label, optional video): "
    "statistics per event and per track (see fa-summarize(1), EVENTS; fa-collect: a segment of the long table).",
)

baseline_option = click.option(
    "--baseline",
    default=None,
    metavar="LABEL",
    help="With --events: the events labelled LABEL are the baseline (fa-summarize: each event's differences from "
    "them; fa-collect --normalize baseline: each person's reference).",
)

# A study's design (fatools.study.design), on fa-run (checked before any model loads) and fa-collect.
design_options = _compose(
    click.option(
        "--design",
        "design_path",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        metavar="FILE",
        help="The study's design table: a CSV whose first column names each input (path, trailing path, file "
        "name or stem), then participant, session, condition, group, participant_track and columns of "
        "your own (see fa-collect(1), DESIGN).",
    ),
    click.option(
        "--participant-from",
        "participant_from",
        default=None,
        metavar="REGEX",
        help="Without --design: the design from each input's path, by a regular expression's named groups "
        "(participant required), e.g. '(?P<participant>P\\d+)_(?P<session>s\\d)'.",
    ),
    click.option(
        "--allow-partial",
        is_flag=True,
        help="Go on when the design does not fit the inputs (rows for unknown inputs, duplicates, inputs "
        "without a row): each is a warning instead of an error (exit 1).",
    ),
)


def summary_options(prog: str) -> Callable[[Any], Any]:
    """fa-summarize's options, on every command that summarises."""
    return _compose(
        click.option(
            "--on-threshold",
            type=click.FloatRange(0, 1),
            default=None,
            help="An AU is active, and an episode starts, above this probability [default: each record's au.threshold].",
        ),
        click.option(
            "--off-threshold",
            type=click.FloatRange(0, 1),
            default=0.4,
            show_default=True,
            help="An episode goes on while the probability stays at or above this (hysteresis).",
        ),
        click.option(
            "--min-duration",
            type=click.FloatRange(min=0),
            default=0.2,
            show_default=True,
            help="Drop episodes shorter than this many seconds (not blinks).",
        ),
        click.option(
            *_names(prog, "--episode-gap"),
            "episode_gap",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Seconds a track may go unseen and an episode still continue [default: 2.5 sampling intervals, at least 0.5].",
        ),
        click.option(
            "--top",
            type=click.IntRange(min=0),
            default=5,
            show_default=True,
            help="How many AUs most_active_aus lists (0: all active ones).",
        ),
        events_option,
        baseline_option,
        click.option(
            "--min-quality",
            type=click.Choice(["poor", "fair", "good"]),
            default=None,
            help="Leave faces whose quality verdict is below this out of statistics, episodes and plots "
            "(the records and tables keep them) [default: keep every face].",
        ),
    )


def summary_from(
    on_threshold: float | None,
    off_threshold: float,
    min_duration: float,
    episode_gap: float | None,
    top: int,
    events: str | None = None,
    baseline: str | None = None,
    min_quality: str | None = None,
) -> SummaryOptions:
    """The SummaryOptions the summary options describe (usage errors for contradictions;
    a bad events file is a FatoolsError naming its line, found before any work starts)."""
    from fatools.events import check_events_options
    from fatools.summary import SummaryOptions

    if on_threshold is not None and off_threshold > on_threshold:
        raise click.UsageError("--off-threshold must not be above --on-threshold")
    try:
        check_events_options(events, baseline)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return SummaryOptions(
        on_threshold=on_threshold,
        off_threshold=off_threshold,
        min_duration=min_duration,
        episode_gap=episode_gap,
        top=top,
        events=events,
        baseline=baseline,
        min_quality=min_quality,
    )


model_options = _compose(
    click.option(
        "--optimize/--no-optimize",
        default=True,
        show_default=True,
        help="Freeze the models and give convolutional ones channels-last input: the same arithmetic up to "
        "float rounding, 1.3-2x faster for those on CPU. --no-optimize runs them as facetorch loads them.",
    ),
    click.option(
        "--fp16",
        is_flag=True,
        help="Half-precision models and inputs, meant for CUDA; changes outputs slightly (see fa-run(1)) "
        "and is slower on CPU.",
    ),
    click.option(
        "--backend",
        type=click.Choice(["auto", "torch", "onnx"]),
        default="auto",
        show_default=True,
        help="What runs the models. auto: ONNX Runtime on the CPU (faster on every model measured, outputs within "
        "1e-4 of torch's; each model is exported once into the store and checked), torch on CUDA. "
        "torch: facetorch's TorchScript models as loaded. onnx: ONNX Runtime or an error.",
    ),
)

bf16_option = click.option(
    "--bf16",
    is_flag=True,
    help="CPU with AMX or AVX512_BF16 only: run the predictors (not the detector) in bfloat16 on torch: faster "
    'there, changes outputs (see fa-run(1)); records say "bf16": true in "au". Elsewhere the models '
    "stay float32, with a warning.",
)

int8_option = click.option(
    "--int8",
    is_flag=True,
    help="CPU only: run the AU model's matrix products in int8 (dynamic quantisation; ONNX Runtime's, or torch's "
    "with --backend torch): about 1.6x faster AU on CPU; changes AU probabilities a little (see fa-run(1)); "
    'its records say "int8": true in "au".',
)

# Where the models run and which files they are, on every command that loads them: one
# stack, so that their --help lists these in one order.
runtime_options = _compose(
    threads_option, device_option, config_option, trust_config_option, models_dir_option, verify_option
)
