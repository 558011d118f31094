"""embed: faces Parquet -> embeddings Parquet. CPU tasks decode and resize the crops of each part;
an actor pool (one GPU per actor when there are GPUs) runs the backbone on them, bf16 on GPUs."""

from __future__ import annotations

import functools
import time
from typing import Any, Dict

import numpy as np

from .. import schema, storage
from ..backbone import fingerprint, load_embedder_file
from ..config import Config
from ..preprocess import InputSpec
from ..runtime import ray_session, write_run_record
from .common import output_counts, summary_line
from .claim import claim
from .parts import check_unreadable, map_parts, unreadable_parts

FACE_COLUMNS = schema.EMBEDDINGS_KEY_COLUMNS + ["crop"]


def _make_embedder(backbone_uri: str, batch_size: int, amp: bool, channels_last: bool, perturbation: str):
    from ..embed import CropEmbedder

    return CropEmbedder(backbone_uri, batch_size, amp, channels_last, perturbation).embed_prepared


def run_embed(faces_uri: str, out_uri: str, backbone_uri: str, cfg: Config, progress: bool = True,
              overwrite: bool = False) -> Dict[str, Any]:
    started = time.time()
    faces_uri, out_uri, backbone_uri = (storage.absolute(u) for u in (faces_uri, out_uri, backbone_uri))
    meta = load_embedder_file(backbone_uri)["meta"]  # a wrong file fails here, before any worker starts
    dim = int(meta["feature_dim"])
    ecfg = cfg.embed
    from ..embed import perturb, prepare_crops

    perturb(np.zeros((8, 8, 3), np.uint8), ecfg.perturbation)  # an unknown name fails here, before Ray
    prepare = functools.partial(prepare_crops, spec=InputSpec.from_meta(meta), perturbation=ecfg.perturbation)
    backbone_fingerprint = fingerprint(backbone_uri)
    settings = {"backbone": backbone_fingerprint, "perturbation": ecfg.perturbation}
    with claim(out_uri, "embed", settings, overwrite, inputs={"faces": faces_uri, "backbone": backbone_uri}):
        with ray_session(cfg.ray):
            map_parts(faces_uri, out_uri,
                      functools.partial(_make_embedder, backbone_uri, ecfg.batch_size, ecfg.amp, ecfg.channels_last,
                                        ecfg.perturbation),
                      schema.embeddings_schema(dim), "embed", use_gpu_if_available=True,
                      gpus_per_actor=ecfg.num_gpus_per_actor,
                      concurrency=None if ecfg.concurrency <= 1 else ecfg.concurrency,
                      in_columns=FACE_COLUMNS, prepare=prepare, progress=progress)
        tally = output_counts(out_uri)
        counts = tally["videos"]
        record = write_run_record(out_uri, "embed", cfg, inputs={"faces": faces_uri, "backbone": backbone_uri},
                                  counts={"videos": counts, "rows": tally["rows"]}, started=started,
                                  extra={"embedding_dim": dim, "backbone_fingerprint": backbone_fingerprint,
                                         "backbone_meta": meta, "perturbation": ecfg.perturbation,
                                         "unreadable_input_parts": unreadable_parts(out_uri)})
        print(summary_line("embed", counts, time.time() - started, f"dim {dim}"), flush=True)
    check_unreadable(out_uri, "embed")
    return record
