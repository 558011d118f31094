"""DeeperForensics-1.0 (DF1.0).

Layout::

    ROOT/manipulated_videos/end_to_end/000_M101.mp4          # <FF++ target id>_<source actor>
    ROOT/manipulated_videos/end_to_end_level_3/...            # perturbed variants (``variant`` option)
    ROOT/lists/splits/{train,val,test}.txt                    # one file name per line: 000_M101.mp4

DF1.0's fakes are swapped onto FF++ target videos, and the benchmark's real class is FF++'s original
videos: give ``ffpp_root`` (with FF++'s split files) to add the originals of the same split.
"""

from __future__ import annotations

from typing import Dict

from . import DATASET_ADAPTERS
from .base import DatasetAdapter


@DATASET_ADAPTERS.register("deeperforensics")
class DeeperForensicsAdapter(DatasetAdapter):
    dataset = "DF1.0"
    layout = __doc__

    option_names = ("variant", "ffpp_root", "ffpp_compression", "ffpp_splits_dir")

    def file_splits(self) -> Dict[str, str]:
        found: Dict[str, str] = {}
        for split in ("train", "val", "test"):
            f = self.path("lists", "splits", f"{split}.txt")
            if self.fs.exists(f):
                for line in self.read_text(f).splitlines():
                    if line.strip():
                        found[line.strip().split("/")[-1]] = split
        return found

    def rows(self, root: str):
        variant = self.options.get("variant", "end_to_end")
        splits = self.file_splits()
        for p in self.videos_under("manipulated_videos", variant):
            name = p.split("/")[-1]
            yield self.row(p, "fake", variant, splits.get(name, "unknown"))
        if self.options.get("ffpp_root"):
            from .ffpp import FaceForensicsAdapter

            ffpp = FaceForensicsAdapter(split=self.split, methods=[],
                                        compression=self.options.get("ffpp_compression", "c23"),
                                        **({"splits_dir": self.options["ffpp_splits_dir"]}
                                           if self.options.get("ffpp_splits_dir") else {}))
            for r in ffpp.build(self.options["ffpp_root"]).to_pylist():
                yield dict(r, dataset=self.dataset, video_id=f"{self.dataset}/{r['video_id']}")
