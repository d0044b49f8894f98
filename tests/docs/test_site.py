"""The docs site stays in step with the code: every public name has a reference entry, every page
is in the nav, the error tree drawn in the docs is the real class tree, and the README keeps its
two set-up commands."""

from __future__ import annotations

import inspect
import re
import textwrap
from typing import Any

import yaml

import modelmix as mm
import modelmix.testing
from modelmix import _exceptions

from ._runner import DOCS, REPO


def _reference_text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in sorted((DOCS / "reference").glob("*.md")))


def _nav_pages(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


class _IgnoreTags(yaml.SafeLoader):
    """mkdocs.yml uses `!!python/name:` tags; their values don't matter here."""


_IgnoreTags.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def test_every_public_name_has_a_reference_entry() -> None:
    directives = re.findall(r"^::: ([\w.]+)", _reference_text(), flags=re.MULTILINE)
    # A name may be documented at its public path or, where a submodule of the same name shadows
    # it for griffe (modelmix.resilience.retrying), at its defining path.
    documented = {path for path in directives} | {path.rsplit(".", 1)[-1] for path in directives}
    wanted = {f"modelmix.{name}" for name in mm.__all__ if name != "__version__"}
    wanted |= {f"modelmix.testing.{name}" for name in modelmix.testing.__all__}
    missing = sorted(name for name in wanted if name not in documented and name.rsplit(".", 1)[-1] not in documented)
    assert not missing, f"add these public names to a page in docs/reference/: {missing}"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_IgnoreTags)
    nav = set(_nav_pages(config["nav"]))
    pages = {page.relative_to(DOCS).as_posix() for page in DOCS.rglob("*.md")}
    assert not pages - nav, f"pages missing from the mkdocs.yml nav: {sorted(pages - nav)}"
    assert not nav - pages, f"nav entries without a page: {sorted(nav - pages)}"


def _docstring_tree() -> str:
    doc = _exceptions.__doc__ or ""
    start = doc.index("    ModelMixError\n")
    end = doc.index("\n\n", start)
    return textwrap.dedent(doc[start:end]).strip()


def test_error_tree_text_matches_the_module_docstring() -> None:
    page = (DOCS / "errors.md").read_text(encoding="utf-8")
    drawn = page.split("```text\n", 1)[1].split("```", 1)[0].strip()
    assert drawn == _docstring_tree(), "docs/errors.md's text tree differs from the one in _exceptions.py"


def test_error_diagram_matches_the_class_tree() -> None:
    page = (DOCS / "errors.md").read_text(encoding="utf-8")
    diagram = page.split("```mermaid\n", 1)[1].split("```", 1)[0]
    drawn = set(re.findall(r"^\s*(\w+) --> (\w+)\s*$", diagram, flags=re.MULTILINE))
    actual: set[tuple[str, str]] = set()
    for name in mm.__all__:
        cls = getattr(mm, name)
        if inspect.isclass(cls) and issubclass(cls, mm.ModelMixError) and cls is not mm.ModelMixError:
            parent = next(base for base in cls.__mro__[1:] if issubclass(base, mm.ModelMixError))
            actual.add((parent.__name__, cls.__name__))
    assert drawn == actual, f"missing edges {sorted(actual - drawn)}, wrong edges {sorted(drawn - actual)}"


def test_readme_has_exactly_two_set_up_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set up\n", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert [c.strip() for c in commands] == [
        "python3 -m venv .venv && .venv/bin/pip install -e '.[local]' && .venv/bin/modelmix chat "
        '"Say hello in five words"',
        "bash scripts/test.sh",
    ]


def test_readme_links_point_at_files() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)#]+)\)", readme) if "://" not in t]
    assert targets, "the README should link to the docs"
    missing = [t for t in targets if not (REPO / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_the_structured_output_strategy_table_is_generated_from_the_profiles() -> None:
    from .strategy_table import PAGE, page_table, table

    assert page_table(PAGE.read_text(encoding="utf-8")) == table(), (
        "docs/structured-output.md's strategy table is stale: run python -m tests.docs.strategy_table --write"
    )
