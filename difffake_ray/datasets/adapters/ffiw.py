"""FFIW-10K (face forensics in the wild).

Layout::

    ROOT/source/{train,val}/train_00000.mp4     # real (the source videos)
    ROOT/target/{train,val}/train_00000.mp4     # fake (the manipulated videos)
    ROOT/test/source/*.mp4  ROOT/test/target/*.mp4     # the test release, when present

Any folder level named ``source`` holds reals and ``target`` fakes; the split is the folder name
beside it (train, val or test).
"""

from __future__ import annotations

from . import DATASET_ADAPTERS
from .base import DatasetAdapter

SPLITS = ("train", "val", "test")


@DATASET_ADAPTERS.register("ffiw")
class FFIWAdapter(DatasetAdapter):
    dataset = "FFIW"
    layout = __doc__

    def rows(self, root: str):
        for p in self.videos_under():
            parts = self.rel(p).split("/")[:-1]
            kind = next((k for k in ("source", "target") if k in parts), None)
            if kind is None:
                continue
            split = next((s for s in parts if s in SPLITS), "unknown")
            yield self.row(p, "real" if kind == "source" else "fake",
                           "original" if kind == "source" else "ffiw", split)
