"""difffake-ray command line: parses, loads the config, dispatches one function per stage.

Every command takes ``--config FILE`` (YAML, defaults in configs/default.yaml) and any number of
``--set section.key=value`` overrides; ``--address`` attaches to a running Ray cluster (default: a
local Ray started in-process).
"""

from __future__ import annotations

import sys
from typing import List, Optional, Sequence

import click


def _load(ctx: click.Context, extra: Sequence[str] = ()):
    from difffake_ray.config import load_config

    opts = ctx.find_root().obj
    return load_config(opts["config"], list(opts["overrides"]) + list(extra))


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", default=None, metavar="FILE",
              help="YAML config (paper defaults when omitted; see configs/default.yaml).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set extract.n_frames=32 (repeatable).")
@click.option("--address", default=None, metavar="ADDR",
              help="Ray cluster to attach to ('auto', 'ray://host:10001'). Default: local Ray in-process.")
@click.pass_context
def main(ctx: click.Context, config_path: Optional[str], overrides: Sequence[str], address: Optional[str]):
    """DiffFake deepfake detection on Ray: extract -> train -> embed -> fit -> score -> evaluate."""
    extra = list(overrides) + ([f"ray.address={address}"] if address else [])
    ctx.obj = {"config": config_path, "overrides": extra}


@main.command("make-corpus")
@click.argument("out")
@click.option("--videos", type=int, default=None, help="Number of drawn-face videos (default 24).")
@click.option("--seed", type=int, default=None)
@click.pass_context
def make_corpus_cmd(ctx, out: str, videos: Optional[int], seed: Optional[int]):
    """Generate a synthetic corpus of real and fake face videos under OUT (with manifest.parquet)."""
    from difffake_ray.datasets.synthetic import make_corpus

    extra = ([f"corpus.n_videos={videos}"] if videos is not None else []) + \
            ([f"corpus.seed={seed}"] if seed is not None else [])
    cfg = _load(ctx, extra)
    table = make_corpus(out, cfg.corpus)
    labels = table["label"].to_pylist()
    click.echo(f"make-corpus: {table.num_rows} videos ({labels.count('real')} real, "
               f"{labels.count('fake')} fake) in {out}; manifest: {out}/manifest.parquet")


@main.command("extract")
@click.argument("source")
@click.argument("out")
@click.option("--adapter", default=None, help="Dataset adapter to read SOURCE with (see `manifest --help`).")
@click.option("--format", "image_format", type=click.Choice(["png", "jpeg"]), default=None,
              help="Crop encoding (default png, lossless).")
@click.pass_context
def extract_cmd(ctx, source: str, out: str, adapter: Optional[str], image_format: Optional[str]):
    """Faces of every video in SOURCE (folder, CSV/Parquet manifest, or dataset root) -> OUT Parquet.

    40 equally spaced frames per video, Haar face, 68 landmarks, 1.3x crop, 224 px. Rerunning skips
    videos already complete in OUT.
    """
    from difffake_ray.datasets.manifest import ManifestError
    from difffake_ray.pipeline.extract import run_extract

    cfg = _load(ctx, [f"extract.image_format={image_format}"] if image_format else [])
    try:
        run_extract(source, out, cfg, adapter=adapter)
    except ManifestError as exc:
        _fail(exc)


@main.command("train")
@click.argument("faces")
@click.argument("run_dir")
@click.option("--num-gpus", type=int, default=None, help="GPU workers for DDP (0: CPU workers).")
@click.option("--workers", type=int, default=None, help="CPU workers when --num-gpus is 0 (gloo DDP).")
@click.option("--backbone", default=None, help="timm model name (default efficientnet_b4).")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None, help="Images per step: half real, half pseudo-fake.")
@click.option("--nrs/--no-nrs", default=None, help="Noise refinement loss weights (BBMG paper).")
@click.option("--resume", is_flag=True, help="Continue the run in RUN_DIR from its latest checkpoint.")
@click.pass_context
def train_cmd(ctx, faces, run_dir, num_gpus, workers, backbone, epochs, batch_size, nrs, resume):
    """Train the backbone with SAM on real faces + pseudo-fakes (Ray Train), export RUN_DIR/best.pt."""
    from difffake_ray.pipeline.train import run_train
    from difffake_ray.train.data import TrainingDataError

    extra = [f"train.{k}={v}" for k, v in (("num_gpus", num_gpus), ("num_workers", workers),
                                            ("backbone", backbone), ("epochs", epochs),
                                            ("batch_size", batch_size)) if v is not None]
    if nrs is not None:
        extra.append(f"train.nrs={'true' if nrs else 'false'}")
    try:
        run_train(faces, run_dir, _load(ctx, extra), resume=resume)
    except (TrainingDataError, FileNotFoundError) as exc:
        _fail(exc)


@main.command("preview-pseudofakes")
@click.argument("faces")
@click.argument("out_png")
@click.option("--n", type=int, default=8, help="Number of real faces to show.")
@click.pass_context
def preview_cmd(ctx, faces, out_png, n):
    """A PNG grid per face: image, landmarks, mask and pseudo-fake for each mask scheme."""
    from difffake_ray.pseudofake.preview import preview_grid

    preview_grid(faces, out_png, _load(ctx), n=n)
    click.echo(f"preview-pseudofakes: {out_png}")


@main.command("embed")
@click.argument("faces")
@click.argument("out")
@click.option("--backbone", "backbone_uri", required=True, help="Exported backbone (RUN_DIR/best.pt).")
@click.option("--perturbation", default=None, help="Robustness protocol: resize128, blur3, jpeg50, ...")
@click.pass_context
def embed_cmd(ctx, faces, out, backbone_uri, perturbation):
    """Embeddings of every stored face (Ray Data actor pool; one GPU per actor when there are GPUs)."""
    from difffake_ray.pipeline.embed import run_embed

    run_embed(faces, out, backbone_uri, _load(ctx, [f"embed.perturbation={perturbation}"] if perturbation else []))


@main.command("fit")
@click.argument("emb")
@click.argument("out")
@click.option("--combination", default=None, help="abs, sub, sub2 (default), sub3, single.")
@click.option("--components", type=int, default=None, help="GMM components (default 3).")
@click.option("--model", "anomaly_model", default=None, help="gmm (default), ocsvm, autoencoder.")
@click.pass_context
def fit_cmd(ctx, emb, out, combination, components, anomaly_model):
    """Fit the anomaly model on pairs of real training videos; saved as npz + JSON (no pickle)."""
    from difffake_ray.adm.fit import run_fit

    extra = [f"fit.{k}={v}" for k, v in (("combination", combination), ("n_components", components),
                                          ("anomaly_model", anomaly_model)) if v is not None]
    try:
        run_fit(emb, out, _load(ctx, extra))
    except ValueError as exc:
        _fail(exc)


@main.command("score")
@click.argument("emb")
@click.argument("out")
@click.option("--adm", "model_uri", required=True, help="Folder written by `fit`.")
@click.pass_context
def score_cmd(ctx, emb, out, model_uri):
    """Per video: 30 pairs, mean log-likelihood (higher = more real) -> Parquet table by dataset."""
    from difffake_ray.pipeline.score import run_score

    try:
        run_score(emb, out, model_uri, _load(ctx))
    except FileNotFoundError as exc:
        _fail(exc)


@main.command("evaluate")
@click.argument("scores")
@click.argument("out")
@click.pass_context
def evaluate_cmd(ctx, scores, out):
    """Video AUC overall, per dataset and per method; metrics.json, roc.png, score_hist.png."""
    from difffake_ray.evaluate import run_evaluate

    run_evaluate(scores, out, _load(ctx))


@main.command("run-all")
@click.argument("config_file", required=False)
@click.pass_context
def run_all_cmd(ctx, config_file):
    """Every stage end to end on the config's corpus (a generated demo corpus by default)."""
    from difffake_ray.pipeline.run_all import run_all

    if config_file:
        ctx.find_root().obj["config"] = config_file
    run_all(_load(ctx))


if __name__ == "__main__":
    main()
