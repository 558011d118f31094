"""FaceForensics++ (and its FaceShifter subset).

Layout (as the official download script writes it)::

    ROOT/original_sequences/youtube/{raw|c23|c40}/videos/000.mp4
    ROOT/manipulated_sequences/{Deepfakes|Face2Face|FaceSwap|NeuralTextures|FaceShifter}/{raw|c23|c40}/videos/000_003.mp4
    ROOT/splits/{train,val,test}.json     # the official split files: [["953", "974"], ...]

The split files live in the FaceForensics GitHub repository (dataset/splits/), not in the download:
put them under ROOT/splits or pass ``splits_dir``. A pair [a, b] puts originals a and b and the
fakes a_b and b_a in that split. ``c0`` is accepted for ``raw``.
"""

from __future__ import annotations

import json
import posixpath
from typing import Dict, Optional

from ... import storage
from ..manifest import ManifestError
from . import DATASET_ADAPTERS
from .base import DatasetAdapter, stem

FFPP_METHODS = ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"]
COMPRESSIONS = {"c0": "raw", "raw": "raw", "c23": "c23", "c40": "c40"}


@DATASET_ADAPTERS.register("ffpp")
class FaceForensicsAdapter(DatasetAdapter):
    dataset = "FF++"
    layout = __doc__
    default_methods = FFPP_METHODS

    option_names = ("compression", "methods", "splits_dir", "include_originals")

    def __init__(self, split: Optional[str] = None, **options):
        super().__init__(split, **options)
        comp = str(options.get("compression", "c23"))
        if comp not in COMPRESSIONS:
            raise ManifestError(f"{self.dataset}: compression {comp!r}; expected one of c0, raw, c23, c40")
        self.compression = COMPRESSIONS[comp]
        methods = options.get("methods", self.default_methods)
        self.methods = methods.split(",") if isinstance(methods, str) else list(methods)
        self.include_originals = str(options.get("include_originals", True)).lower() not in ("false", "0", "no")

    def video_splits(self) -> Dict[str, str]:
        """Video id ('000' or '000_003') -> split, from the official json files."""
        if self.options.get("splits_dir"):
            fs, splits_dir = storage.url_to_fs(storage.absolute(str(self.options["splits_dir"])))
        else:
            fs, splits_dir = self.fs, self.path("splits")
        found: Dict[str, str] = {}
        for split in ("train", "val", "test"):
            f = posixpath.join(splits_dir, f"{split}.json")
            if not fs.exists(f):
                continue
            with fs.open(f, "rb") as fh:
                try:
                    pairs = json.load(fh)
                except json.JSONDecodeError as exc:
                    raise ManifestError(f"{self.dataset}: {f} is not valid JSON ({exc})") from None
            for pair in pairs:
                if len(pair) != 2:
                    raise ManifestError(f"{self.dataset}: {f}: expected pairs of video ids, got {pair!r}")
                a, b = (str(x) for x in pair)
                for vid in (a, b, f"{a}_{b}", f"{b}_{a}"):
                    found[vid] = split
        if not found and self.split:
            raise ManifestError(
                f"{self.dataset}: split {self.split!r} asked for, but no split files in {splits_dir} "
                "(train.json/val.json/test.json from the FaceForensics repository's dataset/splits/)")
        return found

    def rows(self, root: str):
        splits = self.video_splits()
        if self.include_originals:
            for p in self.videos_under("original_sequences", "youtube", self.compression, "videos"):
                yield self.row(p, "real", "original", splits.get(stem(p), "unknown"),
                               video_id=f"{self.compression}/original/{stem(p)}")
        for method in self.methods:
            for p in self.videos_under("manipulated_sequences", method, self.compression, "videos"):
                yield self.row(p, "fake", method, splits.get(stem(p), "unknown"),
                               video_id=f"{self.compression}/{method}/{stem(p)}")


@DATASET_ADAPTERS.register("faceshifter")
class FaceShifterAdapter(FaceForensicsAdapter):
    """FaceShifter as released inside FF++ (manipulated_sequences/FaceShifter), with FF++'s splits and
    originals as the real class."""

    dataset = "FaceShifter"
    default_methods = ["FaceShifter"]
