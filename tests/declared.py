"""A function declared by a test, served by a real functions-framework process.

As a user serves their own model: a main.py with one `entry_point(Declaration(...))`, here
written into a temporary folder instead of modelserve/declarations.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import REPO_ROOT, FunctionServer

MAIN_TEMPLATE = '''"""A test's own function (tests/declared.py)."""
from modelserve.app import entry_point
from modelserve.declarations import Declaration, Threads

{name} = entry_point(Declaration(
    name={name!r}, task={task!r}, model_variable={variable!r}, model_folder={folder!r},
    title={title!r}, summary={summary!r}, threads=Threads(fixed=1)))
'''


def model_variable(name: str) -> str:
    """The model URI variable a declared function reads: MY_FN -> MY_FN_MODEL_URI."""
    return f"{name.upper()}_MODEL_URI"


def declared_server(folder: Path, name: str, task: str, model_root: Path,
                    extra_env: dict[str, str] | None = None) -> FunctionServer:
    """Write `folder`/main.py declaring function `name` and serve it on `model_root`."""
    folder.mkdir(parents=True, exist_ok=True)
    main = folder / "main.py"
    main.write_text(MAIN_TEMPLATE.format(
        name=name, task=task, variable=model_variable(name), folder=model_root.name,
        title=f"{name} (declared by a test)", summary=f"POST a record to {name}."))
    python_path = os.pathsep.join(
        [str(REPO_ROOT / "functions"), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = {model_variable(name): str(model_root), "MODEL_CACHE_DIR": str(folder / "cache"),
           "PYTHONPATH": python_path, **(extra_env or {})}
    return FunctionServer(name, env, folder / "server.log", source=main)
