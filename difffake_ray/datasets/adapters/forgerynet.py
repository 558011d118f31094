"""ForgeryNet (video track) and its 480-video evaluation protocol.

Layout::

    ROOT/Validation/video/val_video_release/<...>/<name>.mp4
    ROOT/Validation/video_list.txt     # or val_video_list.txt; ``list_file`` picks another

A list line is ``<n_segments> <video_name> [<start> <n_frames> <fake|real>] * n_segments
<binary_label> <triple_label> <16cls_label>`` (binary: 0 real, 1 fake; the 16-class label names the
method, 0 = real). Video names are resolved against the list's folder, its ``video/`` subfolder and
ROOT, in that order.

The protocol samples ``per_method`` videos (60) of each method with ``seed``; ``video_list`` (a file
of video names, one per line) gives the exact subset instead; ``per_method: 0`` keeps every video.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np

from ..manifest import ManifestError
from . import DATASET_ADAPTERS
from .base import DatasetAdapter

SPLIT_FOLDERS = {"train": "Training", "val": "Validation", "test": "Test"}


@DATASET_ADAPTERS.register("forgerynet")
class ForgeryNetAdapter(DatasetAdapter):
    dataset = "ForgeryNet"
    layout = __doc__

    option_names = ("list_file", "per_method", "seed", "video_list")

    def list_file(self) -> str:
        if self.options.get("list_file"):
            return str(self.options["list_file"])
        split = self.split or "val"
        folder, short = SPLIT_FOLDERS.get(split, "Validation"), {"val": "val"}.get(split, split)
        candidates = [self.path(folder, "video_list.txt"), self.path(folder, f"{short}_video_list.txt"),
                      self.path(f"{short}_video_list.txt"), self.path(folder, "video", "video_list.txt")]
        for c in candidates:
            if self.fs.exists(c):
                return c
        raise ManifestError(f"{self.dataset}: no video list for split {split!r}; looked for "
                            f"{', '.join(candidates)} (pass list_file=...)")

    @staticmethod
    def parse_line(line: str, where: str) -> Optional[Dict]:
        t = line.split()
        if not t:
            return None
        try:
            n_seg = int(t[0])
            if len(t) != 2 + 3 * n_seg + 3:
                raise ValueError(f"{len(t)} fields for {n_seg} segment(s), expected {2 + 3 * n_seg + 3}")
            binary, cls16 = int(t[-3]), int(t[-1])
        except ValueError as exc:
            raise ManifestError(f"{where}: {exc}: {line!r}") from None
        if binary not in (0, 1):
            raise ManifestError(f"{where}: binary label {binary} is neither 0 nor 1: {line!r}")
        return {"name": t[1], "label": "fake" if binary else "real",
                "method": "original" if binary == 0 else f"method_{cls16:02d}"}

    def resolve(self, list_dir: str, name: str) -> str:
        candidates = [posixpath.join(list_dir, name), posixpath.join(list_dir, "video", name), self.path(name)]
        return next((c for c in candidates if self.fs.exists(c)), candidates[0])

    def rows(self, root: str):
        list_path = self.list_file()
        entries = []
        for n, line in enumerate(self.read_text(list_path).splitlines(), 1):
            e = self.parse_line(line, f"{list_path} line {n}")
            if e:
                entries.append(e)
        if self.options.get("video_list"):
            keep = {ln.strip() for ln in self.read_text(str(self.options["video_list"])).splitlines() if ln.strip()}
            entries = [e for e in entries if e["name"] in keep]
        else:
            per_method = int(self.options.get("per_method", 60))
            if per_method > 0:
                groups: Dict[str, List[Dict]] = defaultdict(list)
                for e in entries:
                    groups[e["method"]].append(e)
                rng = np.random.default_rng(int(self.options.get("seed", 0)))
                entries = []
                for method in sorted(groups):
                    g = sorted(groups[method], key=lambda e: e["name"])
                    pick = sorted(rng.choice(len(g), size=min(per_method, len(g)), replace=False))
                    entries.extend(g[i] for i in pick)
        split = self.split or "val"
        list_dir = posixpath.dirname(list_path)
        for e in entries:
            path = self.resolve(list_dir, e["name"])
            yield self.row(path, e["label"], e["method"], split, video_id=posixpath.splitext(e["name"])[0])
