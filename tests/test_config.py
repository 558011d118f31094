import pytest

from difffake_ray.config import Config, ConfigError, dump_config, load_config


def test_defaults_are_the_papers():
    cfg = Config()
    assert cfg.extract.n_frames == 40 and cfg.extract.crop_scale == 1.3 and cfg.extract.crop_size == 224
    assert cfg.train.backbone == "efficientnet_b4" and cfg.train.sam_rho == 0.05 and cfg.train.lr == 0.001
    assert cfg.train.epochs == 100 and cfg.train.batch_size == 32 and cfg.train.lr_decay_start_epoch == 75
    assert cfg.fit.combination == "sub2" and cfg.fit.n_components == 3 and cfg.score.pairs_per_video == 30


def test_the_gpu_path_is_the_papers_by_construction():
    """224 px input (the paper's, not timm's 320 for B4) and full-precision embeddings: bf16 moves
    the pair differences the method lives in. Training may keep bf16."""
    cfg = load_config("configs/default.yaml")
    assert cfg.train.image_size == 224 and cfg.embed.amp is False
    assert cfg.fit.pairing == cfg.score.pairing == "random" and not cfg.extract.align


def test_default_yaml_equals_dataclass_defaults():
    assert load_config("configs/default.yaml") == Config()


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("extract:\n  n_frames: 32\ntrain:\n  epochs: 3\n")
    cfg = load_config(str(p), ["train.epochs=5", "fit.combination=sub3", "ray.address=auto"])
    assert cfg.extract.n_frames == 32 and cfg.train.epochs == 5
    assert cfg.fit.combination == "sub3" and cfg.ray.address == "auto"
    assert load_config(None, []) == Config()
    assert "n_frames: 32" in dump_config(cfg)


def test_extends(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  epochs: 7\n  lr: 0.01\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ntrain:\n  epochs: 2\n")
    cfg = load_config(str(tmp_path / "child.yaml"))
    assert cfg.train.epochs == 2 and cfg.train.lr == 0.01


@pytest.mark.parametrize("override, message", [
    ("extract.n_frame=3", "unknown config key"),
    ("train.epochs=many", "expected an integer"),
    ("nosection", "section.key=value"),
])
def test_bad_config_fails_fast(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/config.yaml")


@pytest.mark.parametrize("override, message", [
    # the values that mislabelled good videos (no_frames, no_face, unreadable) or died inside Ray
    ("extract.n_frames=0", r"extract.n_frames = 0: must be between 1 and 1000"),
    ("extract.n_frames=-5", r"extract.n_frames = -5"),
    ("extract.crop_size=0", r"extract.crop_size = 0: must be >= 16"),
    ("extract.frame_sampling=bogus", r"extract.frame_sampling = 'bogus': must be one of linspace, reference"),
    ("extract.detector=bogus", r"extract.detector = 'bogus': must be one of haar"),
    ("extract.landmarker=x", r"extract.landmarker = 'x': must be one of dlib68, lbf"),
    ("pseudofake.mask_generators=[difffake,nope]", r"item 1 \('nope'\) must be one of"),
    ("fit.combination=sub4", r"fit.combination = 'sub4'"),
    ("fit.anomaly_model=knn", r"fit.anomaly_model = 'knn': must be one of autoencoder, gmm, ocsvm"),
    ("fit.reg_covar_grid=[]", r"fit.reg_covar_grid = \[\]: must not be empty"),
    ("fit.covariance_type=diag", r"fit.covariance_type = 'diag': must be one of full"),
    ("train.val_fraction=1.5", r"train.val_fraction = 1.5"),
    ("embed.perturbation=jpeg5O", r"embed.perturbation = 'jpeg5O'"),
    ("evaluate.split=tset", r"evaluate.split = 'tset'"),
    ("corpus.min_seconds=7", r"corpus.max_seconds = 6.0: must be >= corpus.min_seconds"),
])
def test_every_value_is_checked_where_it_is_defined(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_a_section_rebuilt_from_a_dict_is_checked_too():
    from difffake_ray.config import TrainConfig

    with pytest.raises(ConfigError, match="train.batch_size = 1"):
        TrainConfig(batch_size=1)
    for name in ("configs/default.yaml", "configs/cpu.yaml", "configs/demo.yaml"):
        load_config(name)  # every shipped config passes


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    bomb = tmp_path / "bomb.yaml"  # 9^8 strings from a few hundred bytes, if aliases were expanded
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)]
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"bomb.yaml: YAML alias \*a0 at line 2: aliases are not accepted"):
        load_config(str(bomb))
    with pytest.raises(ConfigError, match="aliases are not accepted"):
        load_config(None, ["train.epochs=*x"])


@pytest.mark.parametrize("extends, message", [
    ("loop.yaml", r"extends makes a loop"),
    ("[1, 2]", r"extends must name a file, got \[1, 2\]"),
    ("sub", r"sub is a folder, not a YAML file"),
])
def test_extends_loops_folders_and_non_strings_fail_in_one_line(tmp_path, extends, message):
    (tmp_path / "sub").mkdir()
    (tmp_path / "loop.yaml").write_text(f"extends: {extends}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(str(tmp_path / "loop.yaml"))
