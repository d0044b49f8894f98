"""Provider implementations, imported lazily by the registry (``"provider:model"`` strings).

Each module exposes ``create(name, **options) -> Model``.
"""
