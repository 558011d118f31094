"""Celeb-DF-v2.

Layout::

    ROOT/Celeb-real/id0_0000.mp4
    ROOT/YouTube-real/00000.mp4
    ROOT/Celeb-synthesis/id0_id16_0000.mp4
    ROOT/List_of_testing_videos.txt      # "<1 real | 0 fake> <folder>/<file>.mp4" per line

The listed videos are the test split (518 videos); every other video is train.
"""

from __future__ import annotations

from typing import Dict

from ..manifest import ManifestError
from . import DATASET_ADAPTERS
from .base import DatasetAdapter

FOLDERS = {"Celeb-real": ("real", "original"), "YouTube-real": ("real", "youtube"),
           "Celeb-synthesis": ("fake", "Celeb-synthesis")}
TEST_LIST = "List_of_testing_videos.txt"


@DATASET_ADAPTERS.register("celebdf")
class CelebDFAdapter(DatasetAdapter):
    dataset = "Celeb-DF-v2"
    layout = __doc__

    option_names = ("test_list",)

    def test_videos(self) -> Dict[str, str]:
        """'<folder>/<file>' -> label, from the official test list."""
        path = self.options.get("test_list") or self.path(TEST_LIST)
        if not self.fs.exists(path):
            if self.split:
                raise ManifestError(f"{self.dataset}: split {self.split!r} needs {path}")
            return {}
        listed: Dict[str, str] = {}
        for n, line in enumerate(self.read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or parts[0] not in ("0", "1"):
                raise ManifestError(f"{self.dataset}: {path} line {n}: expected '<0|1> <folder>/<file>', got {line!r}")
            listed[parts[1]] = "real" if parts[0] == "1" else "fake"
        return listed

    def rows(self, root: str):
        listed = self.test_videos()
        for folder, (label, method) in FOLDERS.items():
            for p in self.videos_under(folder):
                rel = self.rel(p)
                if rel in listed and listed[rel] != label:
                    raise ManifestError(f"{self.dataset}: {TEST_LIST} labels {rel} {listed[rel]}, its folder says {label}")
                yield self.row(p, label, method, "test" if rel in listed else "train")
