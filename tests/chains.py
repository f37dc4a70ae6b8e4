"""A shell pipe of fatools' commands run in the test's own process.

``chain("fa-frames v.mp4 --every 3 | fa-detect | fa-predict", store)`` runs each command's
click entry point through CliRunner with the one before's standard output as its standard
input, the store in FATOOLS_MODELS as the real pipes give it, and returns the last one's
standard output.  The records cross from one stage to the next as bytes, as through a
pipe; what the stages have over a real one is this process's loaded models
(``fatools.models.loading``) instead of a torch import and a model build per process, 3-5 s
each.  The commands as processes, joined by real pipes, are tests/test_run.py's
test_fa_run_equals_the_pipe (fa-frames | fa-detect | fa-predict | fa-track | tee |
fa-summarize: fa-run's records and summary equal theirs, and under PYTHONWARNINGS=always
no stage prints a ``WARNING``), tests/test_closed_pipe.py's `fa-track | head -n 1` and
tests/test_frames.py's `fa-frames | head -1`.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

# A warning as each source prints one: Python's (``FILE:LINE: CATEGORY: message``, every
# category's name ending in Warning), torch's C++ TORCH_WARN (``[W1206 12:00:00.1 PID
# file.cpp:12] Warning: ...``) and ONNX Runtime's logger (``[W:onnxruntime:...]``).  The real
# commands' standard error must hold none (tests/test_stack.py, tests/test_run.py).
WARNING = re.compile(r"^\S.*:\d+: \w*Warning: |^\[W\d{4} [^\]]*\] Warning: |\[W:onnxruntime:", re.M)


def _commands() -> dict:
    from fatools.cli import detect, frames, predict, summarize, track

    return {
        "fa-frames": frames.cli,
        "fa-detect": detect.cli,
        "fa-predict": predict.cli,
        "fa-track": track.cli,
        "fa-summarize": summarize.cli,
    }


def chain(command: str, store: Path | str, stages: list[bytes] | None = None) -> bytes:
    """The standard output of ``command``, a pipe of fa-* commands, run in this process;
    each stage's output is appended to ``stages`` when it is given (what a `tee` between
    them would write)."""
    commands = _commands()
    data: bytes | None = None
    for part in command.split("|"):
        name, *args = shlex.split(part)
        result = CliRunner().invoke(
            commands[name], args, input=data, env={"FATOOLS_MODELS": str(store)}, catch_exceptions=False
        )
        assert result.exit_code == 0, f"{part.strip()}: exit {result.exit_code}: {result.stderr}"
        data = result.stdout_bytes
        if stages is not None:
            stages.append(data)
    return data or b""
