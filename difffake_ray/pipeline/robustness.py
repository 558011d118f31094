"""robustness: the paper's robustness protocol as one command. For each perturbation (resize 128
and 256, Gaussian blur 3 and 5, JPEG 50 and 100, and none), embed the faces perturbed, score them
with the same anomaly model, evaluate on the videos neither model saw, and tabulate the AUC."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Dict, Sequence

from .. import storage
from ..config import Config
from ..embed import PERTURBATIONS
from ..figures import png_bytes, pyplot
from ..runtime import ray_session, write_run_record

DEFAULT_PERTURBATIONS = PERTURBATIONS  # none first: the reference row


def run_robustness(faces_uri: str, out_uri: str, backbone_uri: str, model_uri: str, cfg: Config,
                   perturbations: Sequence[str] = DEFAULT_PERTURBATIONS) -> Dict[str, Any]:
    from .evaluate import run_evaluate
    from .embed import run_embed
    from .score import run_score

    started = time.time()
    unknown = [p for p in perturbations if p not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbation(s) {', '.join(unknown)}; known: {', '.join(PERTURBATIONS)}")
    table: Dict[str, Any] = {}
    with ray_session(cfg.ray):
        for name in perturbations:
            pcfg = dataclasses.replace(cfg, embed=dataclasses.replace(cfg.embed, perturbation=name))
            emb, scores = (storage.join(out_uri, name, k) for k in ("emb", "scores"))
            run_embed(faces_uri, emb, backbone_uri, pcfg)
            run_score(emb, scores, model_uri, pcfg, overwrite=True)  # cheap: always the given model's
            metrics = run_evaluate(scores, storage.join(out_uri, name, "report"), pcfg)
            table[name] = {"overall": metrics["overall"],
                           "per_method": {k: v["auc"] for k, v in metrics["per_method"].items()}}
    storage.write_json_atomic(storage.join(out_uri, "robustness.json"), table)
    storage.write_bytes_atomic(storage.join(out_uri, "robustness.png"), _plot(table))
    write_run_record(out_uri, "robustness", cfg, inputs={"faces": faces_uri, "backbone": backbone_uri,
                                                          "model": model_uri},
                     counts={"perturbations": len(table)}, started=started)
    print(format_table(table), flush=True)
    print(f"robustness: {out_uri}/robustness.json, robustness.png", flush=True)
    return table


def format_table(table: Dict[str, Any]) -> str:
    methods = sorted({m for row in table.values() for m in row["per_method"]})
    head = f"{'perturbation':<14}{'AUC':>8}{'AP':>8}" + "".join(f"{m.split('/')[-1][:14]:>16}" for m in methods)
    lines = [head]
    for name, row in table.items():
        o = row["overall"]
        lines.append(f"{name:<14}{o['auc']:>8.4f}{o['ap']:>8.4f}"
                     + "".join(f"{row['per_method'].get(m, float('nan')):>16.4f}" for m in methods))
    return "\n".join(lines)


def _plot(table: Dict[str, Any]) -> bytes:
    fig, ax = pyplot().subplots(figsize=(6, 3.5))
    names = list(table)
    ax.bar(names, [table[n]["overall"]["auc"] for n in names], color="tab:blue")
    ax.set_ylim(0.4, 1.0)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_ylabel("video AUC (held-out videos)")
    ax.set_title("Robustness to perturbations of the test faces")
    for i, n in enumerate(names):
        ax.text(i, table[n]["overall"]["auc"] + 0.01, f"{table[n]['overall']['auc']:.3f}", ha="center", fontsize=8)
    return png_bytes(fig)
