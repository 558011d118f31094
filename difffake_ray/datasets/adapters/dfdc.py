"""DFDC (the full challenge set) and DFDC-preview.

DFDC layout::

    ROOT/dfdc_train_part_0/metadata.json   # {"aaqaifqrwn.mp4": {"label": "FAKE", "split": "train", "original": ...}}
    ROOT/dfdc_train_part_0/aaqaifqrwn.mp4
    ROOT/test/labels.csv                   # the public test set: filename,label (1 = fake)
    ROOT/test/aalscayrfi.mp4

DFDC-preview layout::

    ROOT/dataset.json                      # {"method_A/.../x.mp4": {"label": "fake", "set": "test"}, ...}
    ROOT/method_A/...  ROOT/method_B/...  ROOT/original_videos/...
"""

from __future__ import annotations

import csv
import io
import json
import posixpath

from ..manifest import ManifestError
from . import DATASET_ADAPTERS
from .base import DatasetAdapter


def _label(value, where: str) -> str:
    v = str(value).strip().lower()
    if v in ("fake", "1"):
        return "fake"
    if v in ("real", "0"):
        return "real"
    raise ManifestError(f"{where}: label {value!r} is neither REAL/FAKE nor 0/1")


@DATASET_ADAPTERS.register("dfdc")
class DFDCAdapter(DatasetAdapter):
    dataset = "DFDC"
    layout = __doc__

    def rows(self, root: str):
        for meta in sorted(p for p in self.fs.find(self.base) if posixpath.basename(p) == "metadata.json"):
            folder = posixpath.dirname(meta)
            try:
                entries = json.loads(self.read_text(meta))
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{self.dataset}: {meta} is not valid JSON ({exc})") from None
            for name, info in sorted(entries.items()):
                label = _label(info.get("label", info.get("is_fake")), f"{meta} [{name}]")
                split = str(info.get("split", "train")).lower()
                yield self.row(posixpath.join(folder, name), label, "original" if label == "real" else "dfdc",
                               split if split in ("train", "val", "test") else "unknown")
        for labels in sorted(p for p in self.fs.find(self.base) if posixpath.basename(p) == "labels.csv"):
            folder = posixpath.dirname(labels)
            reader = csv.DictReader(io.StringIO(self.read_text(labels)))
            if not reader.fieldnames or not {"filename", "label"} <= set(reader.fieldnames):
                raise ManifestError(f"{self.dataset}: {labels} needs columns filename,label (has {reader.fieldnames})")
            for n, r in enumerate(reader, 2):
                label = _label(r["label"], f"{labels} line {n}")
                yield self.row(posixpath.join(folder, r["filename"]), label,
                               "original" if label == "real" else "dfdc", "test")


@DATASET_ADAPTERS.register("dfdc_preview")
class DFDCPreviewAdapter(DatasetAdapter):
    dataset = "DFDC-preview"
    layout = __doc__

    option_names = ("metadata",)

    def rows(self, root: str):
        meta = self.options.get("metadata") or self.path("dataset.json")
        if not self.fs.exists(meta):
            raise ManifestError(f"{self.dataset}: {meta} not found")
        try:
            entries = json.loads(self.read_text(meta))
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{self.dataset}: {meta} is not valid JSON ({exc})") from None
        for rel, info in sorted(entries.items()):
            label = _label(info.get("label"), f"{meta} [{rel}]")
            top = rel.split("/")[0]
            method = "original" if label == "real" else top
            split = str(info.get("set", "unknown")).lower()
            yield self.row(self.path(rel), label, method, split if split in ("train", "val", "test") else "unknown")
