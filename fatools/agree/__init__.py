"""Agreement of fatools with human coders (the library behind fa-agree).

``agree(results, {"coder": [paths]})`` returns an ``Agreement`` of pandas tables
(fatools.agree.agreement). The names are imported on first use, so that fa-agree's
``--help``, which reads the protocols (fatools.agree.codes), does not import pandas,
scikit-learn and scipy."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fatools.agree.agreement import ALL, PROTOCOLS, Agreement, Compared, agree

__all__ = ["ALL", "PROTOCOLS", "Agreement", "Compared", "agree"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("fatools.agree.agreement"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
