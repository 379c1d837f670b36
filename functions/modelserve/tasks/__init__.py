"""The task kinds: tabular (JSON records in) and image (an upload in).

A task's module is imported only when a function of its kind is built, so an instance serving
predict_mpg never imports Pillow.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..declarations import IMAGE, TABULAR, Declaration

_MODULES = {TABULAR: ("tabular", "TabularTask"), IMAGE: ("image_classification", "ImageTask")}


def task_for(declaration: Declaration) -> Any:
    """A new task of the declaration's kind."""
    module_name, class_name = _MODULES[declaration.task]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)(declaration)
