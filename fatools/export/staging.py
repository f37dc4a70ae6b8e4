"""Files of an export under temporary names in the output directory, renamed to their
final names only when the whole export has succeeded: an interrupted or failed export
never leaves a half-written file under a final name."""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path
from typing import IO, Any

from fatools.errors import FatoolsError

log = logging.getLogger("fatools")

TEMP_PREFIX = ".fa-export-"
TEMP_SUFFIX = ".part"


def safe_name(text: Any) -> str:
    """A file-name-safe form of a video stem or track id."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return cleaned or "unnamed"


class Staging:
    """Temporary files in the output directory, renamed to their final names on commit."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._temps: list[Path] = []
        self._staged: list[tuple[str, Path, Path]] = []  # (format, temp, final)

    def temp(self) -> Path:
        """A new empty temporary file, removed on abort or when the export ends."""
        # Not mkstemp: its files are private (0600); these become the user's files, so they
        # get the permissions the umask gives any new file.
        while True:
            path = self.out_dir / f"{TEMP_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}"
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise FatoolsError(
                    f"{self.out_dir}: cannot write there ({exc.strerror}); choose another output directory"
                ) from None
        self._temps.append(path)
        return path

    def open(self, mode: str = "wb", **kwargs: Any) -> tuple[Path, IO]:
        path = self.temp()
        return path, open(path, mode, **kwargs)

    def stage(self, fmt: str, temp: Path, final_name: str) -> None:
        """Mark a finished temporary file to become ``final_name`` on commit."""
        self._staged.append((fmt, temp, self.out_dir / final_name))

    def commit(self) -> dict[str, list[Path]]:
        files: dict[str, list[Path]] = {}
        try:
            for fmt, temp, final in self._staged:
                os.replace(temp, final)
                self._temps.remove(temp)
                files.setdefault(fmt, []).append(final)
        except OSError as exc:
            raise FatoolsError(
                f"{final}: cannot write ({exc.strerror}); check the output directory"
            ) from None
        finally:
            self.cleanup()
        return files

    def cleanup(self) -> None:
        """Remove every temporary file still here (scratch files, or all of them on failure)."""
        for path in self._temps:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # pragma: no cover - a read-only disk mid-export
                log.warning("cannot remove temporary file %s: %s", path, exc)
        self._temps.clear()
        self._staged.clear()


class ScratchFiles:
    """One scratch file per video (``Staging.temp``), appended to as records arrive.

    One is open at a time: a stream of many videos must not run out of descriptors.
    """

    def __init__(self, staging: Staging) -> None:
        self.staging = staging
        self.paths: dict[Any, Path] = {}
        self.handle: IO[bytes] | None = None
        self.current: Any = object()

    def writer(self, key: Any) -> IO[bytes]:
        """The open scratch file of ``key`` (a video's name), made on first use."""
        if self.handle is None or self.current != key:
            self.close()
            if key not in self.paths:
                self.paths[key] = self.staging.temp()
            # Kept open across calls, closed by close() on the next key or at the end.
            self.handle = open(self.paths[key], "ab")  # noqa: SIM115
            self.current = key
        return self.handle

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
