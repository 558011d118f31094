"""What every dataset adapter shares: walking the dataset root through fsspec (so s3:// roots work),
building manifest rows with stable video ids, and failing with the expected layout named."""

from __future__ import annotations

import posixpath
from typing import Dict, Iterable, List, Optional, Tuple

import pyarrow as pa

from ... import storage
from ..manifest import VIDEO_EXTENSIONS, ManifestError, manifest_table


class DatasetAdapter:
    """Subclasses set ``dataset`` and ``layout`` (shown when nothing is found) and implement ``rows``."""

    dataset = "unknown"
    layout = ""
    option_names: Tuple[str, ...] = ()

    def __init__(self, split: Optional[str] = None, **options):
        self.split = split
        unknown = set(options) - set(self.option_names)
        if unknown:
            raise ManifestError(f"{self.dataset} adapter: unknown option(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(self.option_names) or '(none)'}")
        self.options = options


    def rows(self, root: str) -> Iterable[Dict[str, str]]:
        raise NotImplementedError

    def build(self, root: str) -> pa.Table:
        self.fs, self.base = storage.url_to_fs(root)
        self.root = root
        if not self.fs.isdir(self.base):
            raise ManifestError(f"{self.dataset}: {root} is not a folder")
        rows = list(self.rows(root))
        if not rows:
            raise ManifestError(f"{self.dataset}: no videos found under {root}; expected layout:\n{self.layout}")
        return manifest_table(rows, source=f"{self.dataset}:{root}")

    # helpers -----------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return posixpath.join(self.base, *parts)

    def uri(self, path: str) -> str:
        """An fsspec path back into a URI of the root's kind."""
        return self.fs.unstrip_protocol(path) if "://" in self.root else path

    def rel(self, path: str) -> str:
        return posixpath.relpath(path, self.base)

    def videos_under(self, *parts: str) -> List[str]:
        folder = self.path(*parts)
        if not self.fs.isdir(folder):
            return []
        return sorted(p for p in self.fs.find(folder) if p.lower().endswith(VIDEO_EXTENSIONS))

    def read_text(self, path: str) -> str:
        with self.fs.open(path, "rb") as fh:
            return fh.read().decode("utf-8-sig")

    def row(self, path: str, label: str, method: str, split: str, video_id: Optional[str] = None) -> Dict[str, str]:
        vid = video_id or posixpath.splitext(self.rel(path))[0]
        return dict(video_id=f"{self.dataset}/{vid}", uri=self.uri(path), label=label, dataset=self.dataset,
                    method=method, split=split)


def stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0]
