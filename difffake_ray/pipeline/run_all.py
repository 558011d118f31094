"""run-all: make (or use) a corpus, then extract -> train -> embed -> fit -> score -> evaluate, and
pack the result as a detector bundle calibrated on the real videos neither model saw."""

from __future__ import annotations

from typing import Any, Dict

from .. import storage
from ..config import Config
from ..runtime import ray_session


def run_all(cfg: Config, overwrite: bool = False) -> Dict[str, Any]:
    from .fit import run_fit
    from ..backbone import export_pretrained_embedder
    from .evaluate import run_evaluate
    from .embed import run_embed
    from .bundle import run_bundle
    from .extract import run_extract
    from .score import run_score
    from .train import run_train

    w = cfg.workdir
    paths = {k: storage.join(w, k) for k in ("corpus", "faces", "run", "emb", "adm", "scores", "report",
                                                 "detector")}
    corpus = cfg.corpus_uri or paths["corpus"]
    if not cfg.corpus_uri and not storage.exists(storage.join(corpus, "manifest.parquet")):
        from ..datasets.synthetic import make_corpus

        make_corpus(corpus, cfg.corpus)
    with ray_session(cfg.ray, runs_train=True):
        run_extract(corpus, paths["faces"], cfg, overwrite=overwrite)
        import os

        if not os.path.exists(os.path.join(paths["run"], "best.pt")):
            if cfg.train.epochs:
                run_train(paths["faces"], paths["run"], cfg)
            else:  # train.epochs = 0: ImageNet's backbone untrained for deepfakes (it saw no video)
                t = cfg.train
                export_pretrained_embedder(t.backbone, storage.join(paths["run"], "best.pt"), t.image_size,
                                           t.pretrained_source, t.weights_path, t.crop_pct, t.embedding)
                print(f"run-all: train.epochs = 0: {t.backbone} with its ImageNet weights, not fine-tuned", flush=True)
        run_embed(paths["faces"], paths["emb"], storage.join(paths["run"], "best.pt"), cfg, overwrite=overwrite)
        run_fit(paths["emb"], paths["adm"], cfg)
        # the model was just fitted again: its scores are redone rather than checked against the last fit
        run_score(paths["emb"], paths["scores"], paths["adm"], cfg, overwrite=True)
    # the held-out test split: videos neither the backbone nor the anomaly model saw
    cfg.evaluate.split = cfg.evaluate.split or "test"
    metrics = run_evaluate(paths["scores"], paths["report"], cfg)
    o = metrics["overall"]
    print(f"run-all: test video AUC {o['auc']:.4f} (95% CI {o['auc_ci95'][0]:.2f}-{o['auc_ci95'][1]:.2f}; "
          f"{o['n_real']} real, {o['n_fake']} fake, none seen in "
          f"training or fitting); scores: {paths['scores']}; plots: {paths['report']}/roc.png, "
          f"{paths['report']}/score_hist.png", flush=True)
    run_bundle(storage.join(paths["run"], "best.pt"), paths["adm"], paths["detector"], cfg, calibrate_uri=paths["emb"])
    return metrics
