"""The public surface is exactly what modelmix/__init__.py exports, and every export is documented."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import modelmix as mm


def test_all_names_import_and_are_listed_once() -> None:
    assert len(mm.__all__) == len(set(mm.__all__))
    for name in mm.__all__:
        assert hasattr(mm, name), f"modelmix.__all__ lists {name!r} but it is not importable"


def test_no_public_name_is_left_out_of_all() -> None:
    public = {name for name, value in vars(mm).items() if not name.startswith("_") and not inspect.ismodule(value)}
    assert public - set(mm.__all__) == set(), "public names missing from __all__"


def test_every_public_class_and_function_has_a_docstring() -> None:
    undocumented = [
        name
        for name in mm.__all__
        if (inspect.isclass(getattr(mm, name)) or inspect.isfunction(getattr(mm, name)))
        and not inspect.getdoc(getattr(mm, name))
    ]
    assert undocumented == []


def test_public_subpackages_export_only_what_they_list() -> None:
    for module_name in ("modelmix.testing", "modelmix.tokens"):
        module = importlib.import_module(module_name)
        exported = set(module.__all__)
        public = {n for n, v in vars(module).items() if not n.startswith("_") and not inspect.ismodule(v)}
        assert public == exported, module_name


def test_importing_modelmix_does_not_import_providers_or_optional_extras() -> None:
    # Providers load lazily through the registry so `import modelmix` stays cheap.
    code = (
        "import sys, modelmix; "
        "heavy = [m for m in ('modelmix.providers.openai', 'modelmix.providers.azure', 'modelmix.resilience', "
        "'tenacity', 'llama_cpp', 'azure.identity', 'tiktoken', 'importlib.metadata', 'difflib') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_public_functions_survive_provider_imports() -> None:
    # Importing modelmix.providers.* sets the package attribute `providers`; no public function may
    # share a name with a subpackage, or it would be replaced by the module.
    import modelmix.providers.openai  # noqa: F401

    for name in mm.__all__:
        assert not inspect.ismodule(getattr(mm, name)), f"modelmix.{name} was shadowed by a subpackage"
    assert "openai" in mm.list_providers()


def test_lazy_names_resolve_to_their_objects_and_are_listed_by_dir() -> None:
    from modelmix.providers.azure import AzureModel
    from modelmix.resilience import fallback

    assert mm.fallback is fallback
    assert mm.AzureModel is AzureModel
    assert {"fallback", "AzureModel", "list_models"} <= set(dir(mm))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = mm.not_a_name
