"""Positron's Python kernel files for `positron_diff.py`, at one pinned revision, in a
git-ignored folder (`tools/.positron/<revision>/positron/`). They are Elastic-licensed:
they are read and run here, never committed and never copied into the repository.

Where they come from, in this order of preference:
- `--positron-dir DIR`: a folder that holds them (a checkout's
  `extensions/positron-python/python_files/posit/positron`, or a folder filled by hand);
- `--positron-git GITDIR`: a clone of posit-dev/positron (or a fork holding the pinned
  revision), read with `git show REVISION:path`;
- otherwise GitHub's raw URLs at the pinned revision.

Which files: the three seeds (`data_explorer.py`, `variables.py`, `inspectors.py`) and,
followed file by file, every module of the package they import (`from .x import ...`,
read with `ast`), plus `positron_ipkernel.py` for reference. The kernel itself, its shell
and the other panes' services are not run: `_positron_drivers.py` stands in for them.
Positron builds its `_vendor` folder (pydantic 1) at release time; here a two-line package
re-exports `pydantic.v1` under that name (pip's pydantic 2 ships it).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["PIN", "SEEDS", "fetch_sources", "package_root"]

# posit-dev/positron, 2026-06-17 ("chore: update bootstrap extensions (posit.publisher)").
PIN = "a2f15fb422ab13359c0fdfa519213f569e637622"
PACKAGE_PATH = "extensions/positron-python/python_files/posit/positron"
RAW_URL = "https://raw.githubusercontent.com/posit-dev/positron/{rev}/{path}"
SEEDS = ("data_explorer", "variables", "inspectors")
FOR_REFERENCE = ("positron_ipkernel",)
HERE = Path(__file__).resolve().parent
CACHE = HERE / ".positron"

VENDOR_SHIM = {
    "_vendor/__init__.py": "",
    "_vendor/pydantic/__init__.py": "from pydantic.v1 import *  # noqa: F403\n"
    "from pydantic.v1 import ValidationError  # noqa: F401\n",
    "_vendor/pydantic/generics.py": "from pydantic.v1.generics import *  # noqa: F403\n",
}


class SourceError(RuntimeError):
    """The Positron files could not be had."""


def package_root(revision: str = PIN) -> Path:
    """The folder to put on sys.path: it holds the package `positron`."""
    return CACHE / revision


def fetch_sources(
    revision: str = PIN, folder: Path | None = None, git_dir: Path | None = None
) -> Path:
    """The `positron` package at `revision`, gathered into the cache; returns its root
    (a folder made for a revision that could not be had is removed again)."""
    root = package_root(revision)
    fresh = not root.exists()
    try:
        return _gather(root, revision, folder, git_dir)
    except SourceError:
        if fresh:
            shutil.rmtree(root, ignore_errors=True)
        raise


def _gather(root: Path, revision: str, folder: Path | None, git_dir: Path | None) -> Path:
    package = root / "positron"
    package.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")  # a second guard against committing them

    def read(module: str) -> str | None:
        name = f"{module.replace('.', '/')}.py"
        if folder is not None:
            path = folder / name
            return path.read_text() if path.is_file() else None
        if git_dir is not None:
            done = subprocess.run(
                ["git", f"--git-dir={git_dir}", "show", f"{revision}:{PACKAGE_PATH}/{name}"],
                capture_output=True,
                text=True,
            )
            return done.stdout if done.returncode == 0 else None
        url = RAW_URL.format(rev=revision, path=f"{PACKAGE_PATH}/{name}")
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return str(answer.read().decode())
        except urllib.error.HTTPError:
            return None  # not at that revision
        except OSError as e:
            raise SourceError(
                f"cannot download {url} ({e}); give --positron-git or --positron-dir"
            ) from e

    seen: set[str] = set()
    todo = ["__init__", *SEEDS, *FOR_REFERENCE]
    while todo:
        module = todo.pop()
        if module in seen or module.startswith("_vendor"):
            continue
        seen.add(module)
        text = read(module)
        if text is None:
            if module in (*SEEDS, "__init__"):
                raise SourceError(f"{module}.py is not at {revision} in the given source")
            if module.count(".") == 0 and (package / f"{module}.py").exists():
                continue
            # `from . import name` may name a package or an attribute: try, and skip.
            continue
        target = package / f"{module.replace('.', '/')}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        if module not in FOR_REFERENCE:
            todo.extend(relative_imports(text, module))
    for name, text in VENDOR_SHIM.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def relative_imports(text: str, module: str) -> list[str]:
    """The package's modules that `module`'s source imports (relative imports only,
    wherever they are: top level, functions, TYPE_CHECKING blocks)."""
    out: list[str] = []
    parent = module.rsplit(".", 1)[0] if "." in module else ""
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = parent if node.level == 1 else ""
        if node.module:
            out.append(f"{base}.{node.module}" if base else node.module)
        else:
            out.extend(f"{base}.{a.name}" if base else a.name for a in node.names)
    return out
