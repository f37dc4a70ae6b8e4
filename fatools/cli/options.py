"""Options shared by the fa-* commands, defined once as click decorators (after cligj).

``command`` wraps a click command with the conventions every tool follows: logs on
stderr, exit 1 with a one-line message on runtime errors (a traceback only with
``--debug``), exit 2 on usage errors (click's own), and a quiet end on a broken pipe.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable

import click

from fatools.errors import FatoolsError

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


def command(prog: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command body the shared verbosity/debug options and error handling."""

    def decorate(body: Callable[..., Any]) -> Callable[..., Any]:
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
            except Exception as exc:  # noqa: BLE001 - last line of defence, reported in one line
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

batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Frames per detector batch (default chosen per model and device).",
)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Your own facetorch/OmegaConf YAML instead of the bundled configuration.",
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
