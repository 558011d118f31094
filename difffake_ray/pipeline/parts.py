"""Part-file mapping on Ray Data: each input part file (whole videos) becomes output part file(s)
of the same name, written atomically, then a ``_done/<name>`` marker. A rerun skips parts whose
marker exists; a retried task rewrites the same names. Memory stays bounded by one part per actor,
whatever the corpus size."""

from __future__ import annotations

import collections
import posixpath
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pyarrow as pa

from .. import storage
from ..runtime import cluster_cpus, cluster_gpus

DONE_DIR = "_done"


class PartMapper:
    def __init__(self, make_worker: Callable[[], Any], out_uri: str, out_schema: pa.Schema,
                 partition_by: Optional[str] = None, in_columns: Optional[List[str]] = None):
        self.worker = make_worker()
        self.out_uri, self.out_schema = out_uri, out_schema
        self.partition_by, self.in_columns = partition_by, in_columns

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, List[Any]]:
        files, rows_out = [], []
        for f in batch["file"]:
            f = str(f)
            rows = storage.read_parquet_files([f], columns=self.in_columns).to_pylist()
            out = self.worker(rows)
            name = posixpath.basename(f)
            if self.partition_by:
                groups = collections.defaultdict(list)
                for r in out:
                    groups[r[self.partition_by]].append(r)
                for key, part in sorted(groups.items()):
                    storage.write_parquet_atomic(pa.Table.from_pylist(part, schema=self.out_schema),
                                                 storage.join(self.out_uri, f"{self.partition_by}={key}", name))
            else:
                storage.write_parquet_atomic(pa.Table.from_pylist(out, schema=self.out_schema),
                                             storage.join(self.out_uri, name))
            storage.write_bytes_atomic(storage.join(self.out_uri, DONE_DIR, name), b"")
            files.append(name)
            rows_out.append(len(out))
        return {"file": files, "rows": rows_out}


def pending_parts(in_uri: str, out_uri: str) -> List[str]:
    fs, path = storage.url_to_fs(storage.join(out_uri, DONE_DIR))
    done = {posixpath.basename(p) for p in fs.ls(path, detail=False)} if fs.exists(path) else set()
    return [f for f in storage.list_data_files(in_uri) if posixpath.basename(f) not in done]


def map_parts(in_uri: str, out_uri: str, make_worker: Callable[[], Any], out_schema: pa.Schema,
              desc: str, use_gpu_if_available: bool = False, gpus_per_actor: float = 1.0,
              concurrency: Optional[int] = None, partition_by: Optional[str] = None,
              in_columns: Optional[List[str]] = None, progress: bool = True) -> int:
    """Run ``make_worker()(rows) -> rows`` over every pending part of ``in_uri``. Returns rows written."""
    import ray
    from tqdm import tqdm

    storage.remove_temporaries(out_uri)
    todo = pending_parts(in_uri, out_uri)
    if not todo:
        return 0
    gpus = cluster_gpus() if use_gpu_if_available else 0.0
    n_actors = concurrency or (int(gpus // gpus_per_actor) if gpus else int(cluster_cpus()))
    n_actors = max(1, min(n_actors, len(todo)))
    ds = ray.data.from_items([{"file": f} for f in todo], override_num_blocks=len(todo))
    kwargs = {"num_gpus": gpus_per_actor} if gpus else {"num_cpus": 1}
    out = ds.map_batches(PartMapper, fn_constructor_kwargs=dict(make_worker=make_worker, out_uri=out_uri,
                                                                out_schema=out_schema, partition_by=partition_by,
                                                                in_columns=in_columns),
                         batch_size=1, batch_format="numpy",
                         # dead actors restart and their task is retried: Ray Data's default
                         compute=ray.data.ActorPoolStrategy(size=n_actors), **kwargs)
    total = 0
    bar = tqdm(total=len(todo), desc=desc, unit="part", disable=not progress)
    for row in out.iter_rows():
        total += int(row["rows"])
        bar.update(1)
    bar.close()
    return total
