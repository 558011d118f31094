"""Dataset adapters: a dataset's own folder layout and metadata -> the manifest.

One module per dataset, imported lazily by name. ``create_dataset_adapter(name, **options)``
returns an object whose ``build(root)`` gives the manifest table (schema.MANIFEST_SCHEMA).
"""

from __future__ import annotations

from ...registry import Registry

DATASET_ADAPTERS = Registry("dataset adapter", modules={
    "ffpp": "difffake_ray.datasets.adapters.ffpp",
    "faceshifter": "difffake_ray.datasets.adapters.ffpp",
    "celebdf": "difffake_ray.datasets.adapters.celebdf",
    "deeperforensics": "difffake_ray.datasets.adapters.deeperforensics",
    "forgerynet": "difffake_ray.datasets.adapters.forgerynet",
    "dfdc": "difffake_ray.datasets.adapters.dfdc",
    "dfdc_preview": "difffake_ray.datasets.adapters.dfdc",
    "ffiw": "difffake_ray.datasets.adapters.ffiw",
})


def create_dataset_adapter(name: str, **options):
    return DATASET_ADAPTERS.create(name, **options)
