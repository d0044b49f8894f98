"""Every package modelmix imports is one it declares: a fresh ``pip install modelmix`` must import.

A package that only arrives as a dependency of a dependency (``sniffio`` came with older anyio
releases, then stopped) works on the developer's machine and breaks a new user's install the day
that dependency changes, so imports are checked against modelmix's own requirements, not against
what happens to be installed.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "modelmix"


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> tuple[set[str], set[str]]:
    """(the core requirements, the requirements of every extra), as normalised distribution names."""
    core: set[str] = set()
    extras: set[str] = set()
    for requirement in requires("modelmix") or ():
        (extras if "extra ==" in requirement else core).add(_name(requirement))
    return core, extras


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _third_party(module: str) -> bool:
    return module not in sys.stdlib_module_names and module not in ("modelmix", "__future__")


def _distributions(module: str) -> set[str]:
    """The distributions that provide `module`; for one not installed here (an extra's package),
    the declared requirements named after it (``opentelemetry`` → ``opentelemetry-api``)."""
    installed = packages_distributions().get(module)
    if installed:
        return {d.lower().replace("_", "-") for d in installed}
    core, extras = _declared()
    stem = module.lower().replace("_", "-")
    return {name for name in core | extras if name == stem or name.startswith(stem + "-")}


def test_every_import_is_a_declared_requirement() -> None:
    core, extras = _declared()
    undeclared: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for module in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if _third_party(module) and not _distributions(module) & (core | extras):
                undeclared.setdefault(module, []).append(str(path.relative_to(SRC)))
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_import_modelmix_needs_only_core_requirements() -> None:
    """What ``import modelmix`` and building a model load must come from the core requirements (an
    extra's package may only be imported when its feature is used)."""
    script = (
        "import json, sys\n"
        "import modelmix as mm\n"
        "mm.model('openai:gpt-4o-mini', api_key='sk-test', base_url='http://127.0.0.1:9/v1')\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, check=True).stdout)
    core, _ = _declared()
    direct = {
        module
        for path in SRC.rglob("*.py")
        for module in _imports(ast.parse(path.read_text(encoding="utf-8")))
        if _third_party(module)
    }
    # Only modules modelmix imports itself count: httpx may load its own dependencies.
    outside_core = sorted(m for m in direct & set(loaded) if not _distributions(m) & core)
    assert not outside_core, f"import modelmix loads packages that are not core requirements: {outside_core}"
