"""Modules imported on first use, so that listing codecs or metrics never pays for torch.

``from evalkit._lazy import torch`` gives a stand-in that imports the real ``torch`` the first time one of its
attributes is read (``torch.zeros``, ``torch.Tensor``...) and forwards to it from then on. Annotations are
strings (``from __future__ import annotations``) and never touch it; module-level code must not read its
attributes (a default argument ``dtype=torch.float32`` would import torch at once).

>>> import sys
>>> json = LazyModule("json")
>>> json.dumps([1])
'[1]'
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class LazyModule(types.ModuleType):
    """Stand-in for the module ``name``, imported by the first attribute access (not before)."""

    def __getattr__(self, attr: str) -> Any:
        # sys.modules first: import_module's own checks cost microseconds, on every torch call of a unit
        module = sys.modules.get(self.__name__)
        if module is None:
            module = importlib.import_module(self.__name__)
        return getattr(module, attr)


torch: Any = LazyModule("torch")
