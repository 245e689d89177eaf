"""The package's shape: no private name imported across top-level packages, small modules.

The import layers themselves (nipype only in interfaces/workflows/cli, science packages never
import the app) are import-linter contracts in pyproject.toml, checked by ``lint-imports``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bids_w2v

PACKAGE = Path(bids_w2v.__file__).resolve().parent
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of bids_w2v."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _top(module: str) -> str:
    """``bids_w2v.group.maps`` -> ``group``; ``bids_w2v.demo`` -> ``demo``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module of a ``from ... import`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private_imports(module: str, path: Path, text: str) -> list[str]:
    """The private names that ``module`` (source ``text``) imports from another top-level
    package of bids_w2v, as ``file:line: importer imports _name from module``."""
    found = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        source = _absolute(module, path, node)
        if not source.startswith("bids_w2v.") or _top(source) == _top(module):
            continue
        private_module = any(p.startswith("_") for p in source.split(".")[1:])
        for alias in node.names:
            if alias.name.startswith("_") or private_module:
                rel = path.relative_to(PACKAGE.parent)
                found.append(f"{rel}:{node.lineno}: {module} imports {alias.name} from {source}")
    return found


def private_imports_across_packages() -> list[str]:
    """Every private name that one top-level package of bids_w2v imports from another."""
    found = []
    for module, path in _modules().items():
        found += _private_imports(module, path, path.read_text())
    return found


def long_modules() -> list[str]:
    """``file: N lines`` for every module over MAX_LINES lines."""
    found = []
    for path in _modules().values():
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            found.append(f"{path.relative_to(PACKAGE.parent)}: {n} lines")
    return found


def test_the_checks_see_the_package():
    modules = _modules()
    assert {"bids_w2v.cli.run", "bids_w2v.group.maps", "bids_w2v.demo"} <= set(modules)
    assert _top("bids_w2v.group.maps") == "group" and _top("bids_w2v.demo") == "demo"


def test_private_import_detected():
    """The check can fail: private names from another package are reported, relative imports
    included, while a package's own private names and public names are not."""
    path = PACKAGE / "group" / "maps.py"
    text = (
        "from bids_w2v.cli.run import _prepare_environment, main\n"
        "def f():\n"
        "    from ..outputs.maps import _private\n"
        "from .statistics import _own\n"
        "from bids_w2v.group.roi import _same_package\n"
    )
    found = _private_imports("bids_w2v.group.maps", path, text)
    assert [f.split(": ", 1)[1] for f in found] == [
        "bids_w2v.group.maps imports _prepare_environment from bids_w2v.cli.run",
        "bids_w2v.group.maps imports _private from bids_w2v.outputs.maps",
    ]


def test_no_private_name_imported_across_packages():
    offenders = private_imports_across_packages()
    assert not offenders, "private names imported across packages:\n" + "\n".join(offenders)


def test_modules_are_short():
    offenders = long_modules()
    assert not offenders, f"modules over {MAX_LINES} lines:\n" + "\n".join(offenders)
