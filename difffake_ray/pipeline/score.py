"""score: embeddings Parquet + fitted model -> Parquet score table partitioned by dataset."""

from __future__ import annotations

import functools
import time
from typing import Any, Dict

from .. import schema, storage
from ..adm.persistence import load_model, model_fingerprint
from ..config import Config
from ..runtime import ray_session, write_run_record
from .common import output_counts, summary_line
from .claim import claim, without_as_before
from .parts import check_unreadable, map_parts, unreadable_parts

EMB_COLUMNS = schema.EMBEDDINGS_KEY_COLUMNS + ["embedding"]  # with each face's track and motion


def _make_scorer(model_uri: str, n_pairs: int, min_gap: int, seed: int, min_faces: int, pairing: str):
    from ..adm.scoring import score_videos

    model, meta = load_model(model_uri)
    return functools.partial(score_videos, model=model, meta=meta, n_pairs=n_pairs, min_gap=min_gap, seed=seed,
                             min_faces=min_faces, pairing=pairing)


def run_score(emb_uri: str, out_uri: str, model_uri: str, cfg: Config, progress: bool = True,
              overwrite: bool = False) -> Dict[str, Any]:
    started = time.time()
    emb_uri, out_uri, model_uri = (storage.absolute(u) for u in (emb_uri, out_uri, model_uri))
    _, meta = load_model(model_uri)  # a missing/wrong model fails here, before any work
    try:
        emb_meta = storage.read_json(storage.join(emb_uri, "_run.json"))
        fp = emb_meta.get("backbone_fingerprint")
        if meta.get("backbone_fingerprint") and fp and fp != meta["backbone_fingerprint"]:
            print(f"score: warning: embeddings come from backbone {fp}, the model was fitted on "
                  f"{meta['backbone_fingerprint']}", flush=True)
    except FileNotFoundError:
        pass
    s = cfg.score
    # pairing came after score outputs were written without it (as "random")
    settings = without_as_before({"model": model_fingerprint(model_uri), "pairs_per_video": s.pairs_per_video,
                                  "min_frame_gap": s.min_frame_gap, "seed": s.seed, "min_faces": s.min_faces,
                                  "pairing": s.pairing}, {"pairing": "random"})
    with claim(out_uri, "score", settings, overwrite, inputs={"embeddings": emb_uri, "model": model_uri}):
        with ray_session(cfg.ray):
            map_parts(emb_uri, out_uri, functools.partial(_make_scorer, model_uri, s.pairs_per_video, s.min_frame_gap,
                                                          s.seed, s.min_faces, s.pairing),
                      schema.SCORES_SCHEMA, "score", partition_by="dataset", in_columns=EMB_COLUMNS, progress=progress,
                      use_gpu_if_available=s.gpus_per_actor > 0, gpus_per_actor=s.gpus_per_actor or 1.0)
        counts = output_counts(out_uri, "status")["videos"]
        record = write_run_record(out_uri, "score", cfg, inputs={"embeddings": emb_uri, "model": model_uri},
                                  counts={"videos": counts}, started=started,
                                  extra={"score_direction": "higher = more likely real",
                                         "unreadable_input_parts": unreadable_parts(out_uri)})
        print(summary_line("score", counts, time.time() - started), flush=True)
    check_unreadable(out_uri, "score")
    return record
