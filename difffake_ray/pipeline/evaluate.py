"""evaluate: a score table -> video-level metrics overall, per dataset and per manipulation method
(``metrics.py``), with the ROC and score histogram plotted.

Honesty: by default the videos the anomaly model was fitted on and the backbone was trained on
(found through the run records: scores -> model -> embeddings -> backbone) are left out, and how
many were left out is reported: a score of a video a model has seen says nothing of detection.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

import pandas as pd

from .. import schema, storage
from ..config import Config
from ..figures import png_bytes, pyplot
from ..metrics import video_auc
from ..runtime import write_run_record
from .claim import hold


def seen_videos(scores_uri: str) -> Dict[str, Any]:
    """{"fitted": ids, "trained": ids, "records": [...]} of the model behind a score table, found
    through the run records; a record that cannot be found is named in "missing"."""
    from ..adm.persistence import MODEL_META_FILE
    from ..runtime import FITTED_VIDEOS, TRAINED_VIDEOS, read_run_record, read_seen_videos

    out: Dict[str, Any] = {"fitted": set(), "trained": set(), "records": [], "missing": []}
    try:
        model_uri = read_run_record(scores_uri)["inputs"]["model"]
    except (FileNotFoundError, KeyError):
        out["missing"].append(f"{scores_uri}/_run.json (the model behind these scores)")
        return out
    fitted = read_seen_videos(model_uri, FITTED_VIDEOS)
    if fitted is None:
        out["missing"].append(f"{model_uri}/{FITTED_VIDEOS}")
    else:
        out["fitted"], out["records"] = fitted, out["records"] + [storage.join(model_uri, FITTED_VIDEOS)]
    try:
        emb_uri = storage.read_json(storage.join(model_uri, MODEL_META_FILE))["embeddings"]
        backbone_uri = read_run_record(emb_uri)["inputs"]["backbone"]
    except (FileNotFoundError, KeyError):
        out["missing"].append(f"the embeddings record behind {model_uri}")
        return out
    run_dir = backbone_uri.rsplit("/", 1)[0]
    trained = read_seen_videos(run_dir, TRAINED_VIDEOS)
    if trained is not None:  # an untrained ImageNet backbone has seen no video
        out["trained"], out["records"] = trained, out["records"] + [storage.join(run_dir, TRAINED_VIDEOS)]
    return out


def read_score_table(scores_uri: str, columns: List[str], filter=None):
    """The score rows of ``scores_uri`` (columns projected, ``filter`` pushed down), checked before
    any metric: every part is a score table, and every video is there once. Raises
    FileNotFoundError / ValueError naming the folder or the file."""
    import pyarrow as pa

    if not storage.list_data_files(scores_uri):
        raise FileNotFoundError(f"{scores_uri}: no score table here (the output of `cli.py score`)")
    scores = storage.parquet_dataset(scores_uri, schema=schema.SCORES_SCHEMA)
    tables = []
    try:
        for tagged in scores.scanner(columns=columns, filter=filter).scan_batches():
            batch = tagged.record_batch
            if batch.num_rows and (batch.column("video_id").null_count or batch.column("status").null_count):
                raise ValueError(f"{tagged.fragment.path}: not a score table (no video_id or status); a scores folder "
                                 f"holds the output of `cli.py score` only")
            tables.append(batch)
    except pa.ArrowException as exc:
        raise ValueError(f"{scores_uri}: a part file is not a score table ({str(exc).splitlines()[0]})") from None
    table = pa.Table.from_batches(tables, schema=pa.schema([schema.SCORES_SCHEMA.field(c) for c in columns]))
    ids = table["video_id"]
    import pyarrow.compute as pc

    counts = pc.value_counts(ids)
    twice = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(twice):
        raise ValueError(f"{scores_uri}: {len(twice)} video(s) appear more than once (e.g. {twice[0]['values']} "
                         f"{twice[0]['counts']} times): two score outputs in one folder? An AUC would count them "
                         f"twice; evaluate each output on its own")
    return table


def run_evaluate(scores_uri: str, out_uri: str, cfg: Config) -> Dict[str, Any]:
    started = time.time()
    scores_uri, out_uri = storage.absolute(scores_uri), storage.absolute(out_uri)
    metrics, figures, n_videos = _evaluate(scores_uri, cfg)  # the score table checked before anything is written
    with hold(out_uri, "evaluate", inputs={"scores": scores_uri}):
        storage.write_json_atomic(storage.join(out_uri, "metrics.json"), metrics)
        for name, png in figures.items():
            storage.write_bytes_atomic(storage.join(out_uri, name), png)
        write_run_record(out_uri, "evaluate", cfg, inputs={"scores": scores_uri},
                         counts={"videos": n_videos, "scored": metrics["scored"]}, started=started)
    o, left_out = metrics["overall"], metrics["left_out_seen"]
    print(f"evaluate: {metrics['split']} split, video AUC {o['auc']:.4f} (95% CI {o['auc_ci95'][0]:.2f}-"
          f"{o['auc_ci95'][1]:.2f}), AP {o['ap']:.4f}, EER {o['eer']:.4f} "
          f"({o['n_real']} real, {o['n_fake']} fake; left out {left_out['fitted']} fitted and "
          f"{left_out['trained']} trained-on videos; Youden-binarised {o['youden_binarised_auc']:.4f}); "
          f"report: {out_uri}/metrics.json, roc.png, score_hist.png", flush=True)
    return metrics


def _evaluate(scores_uri: str, cfg: Config):
    """-> (metrics, {file name: PNG bytes}, videos read)."""
    from sklearn.metrics import roc_curve

    plt = pyplot()
    # columns, not row dicts: a score table of millions of videos stays a few hundred MB
    cols = ["video_id", "label", "dataset", "method", "split", "status", "score"]
    import pyarrow.dataset as pads

    split = pads.field("split") == cfg.evaluate.split if cfg.evaluate.split else None
    df = read_score_table(scores_uri, cols, split).to_pandas()
    left_out = {"fitted": 0, "trained": 0, "records": [], "missing": []}
    if cfg.evaluate.exclude_seen:
        seen = seen_videos(scores_uri)
        fitted, trained = df["video_id"].isin(seen["fitted"]), df["video_id"].isin(seen["trained"])
        left_out = {"fitted": int(fitted.sum()), "trained": int((trained & ~fitted).sum()),
                    "records": seen["records"], "missing": seen["missing"]}
        df = df[~(fitted | trained)]
        for what in seen["missing"]:
            print(f"evaluate: warning: no record of seen videos at {what}: none left out for it", flush=True)
    # low_evidence and static rows keep a score for inspection; only a verdict counts in a metric
    has_score = df["score"].notna() & (df["status"] == schema.VIDEO_OK)
    labelled = df["label"].isin(["real", "fake"])
    scored = df[has_score & labelled]
    metrics: Dict[str, Any] = {
        "convention": "score = mean pair score under the model of real pairs (a log-likelihood; for "
                      "regional_gmm the z-score of the least likely block); higher = more real; "
                      "AUC of -score for detecting fakes (video level)",
        "split": cfg.evaluate.split or "all",
        "left_out_seen": left_out,
        "videos": int(len(df)), "scored": int(len(scored)),
        "scored_unlabelled": int((has_score & ~labelled).sum()),
        "not_scored_by_status": {str(k): int(v) for k, v in df[~has_score]["status"].value_counts().items()},
        "overall": video_auc(scored["label"].tolist(), scored["score"].to_numpy()),
        "per_dataset": {}, "per_method": {},
    }
    curves = {"all": scored}
    for ds, rows in scored.groupby("dataset", sort=True):
        metrics["per_dataset"][ds] = video_auc(rows["label"].tolist(), rows["score"].to_numpy())
        reals = rows[rows["label"] == "real"]
        fakes = rows[rows["label"] == "fake"]
        for m, sub_fakes in fakes.groupby("method", sort=True):
            sub = pd.concat([reals, sub_fakes])
            metrics["per_method"][f"{ds}/{m}"] = video_auc(sub["label"].tolist(), sub["score"].to_numpy())
            curves[f"{ds}/{m}"] = sub
    figures = {}

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, rows in curves.items():
        y = (rows["label"] == "fake").astype(int).to_numpy()
        if len(set(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, -rows["score"].to_numpy())
        auc = metrics["overall"]["auc"] if name == "all" else metrics["per_method"][name]["auc"]
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})", lw=2 if name == "all" else 1)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate (real called fake)")
    ax.set_ylabel("true positive rate (fake detected)")
    ax.set_title("DiffFake video-level ROC")
    ax.legend(fontsize=7, loc="lower right")
    figures["roc.png"] = png_bytes(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, colour in (("real", "tab:blue"), ("fake", "tab:red")):
        s = scored.loc[scored["label"] == label, "score"].to_numpy()
        if len(s):
            ax.hist(s, bins=30, alpha=0.6, color=colour, label=f"{label} ({len(s)})")
    ax.set_xlabel("video score (mean pair score; higher = more real)")
    ax.set_ylabel("videos")
    ax.legend()
    figures["score_hist.png"] = png_bytes(fig)
    return metrics, figures, int(len(df))
