"""Install traps that a green CI could hide (see shared/docs/install-notes.md)."""

import os

import pytest


def test_haar_cascade_files_ship_with_opencv():
    import cv2

    assert int(cv2.__version__.split(".")[0]) < 5, "OpenCV 5 wheels ship no Haar cascades"
    for name in ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml"):
        assert os.path.isfile(os.path.join(cv2.data.haarcascades, name))


def test_contrib_facemark_lbf_survives_albumentations():
    import albumentations  # noqa: F401  (installs opencv-python-headless, which shares cv2's files)
    import cv2

    assert hasattr(cv2, "face") and hasattr(cv2.face, "createFacemarkLBF")


def test_dlib_68_point_model_is_found_without_pkg_resources():
    from difffake_ray.faces.landmarkers import dlib68_model_path

    assert os.path.getsize(dlib68_model_path()) > 50_000_000


def test_lbf_landmarker_says_what_it_needs(tmp_path):
    from difffake_ray.faces.landmarkers import create_landmarker

    with pytest.raises(ValueError, match="lbf_model_path"):
        create_landmarker("lbf")
    with pytest.raises(FileNotFoundError, match="LBF model not found"):
        create_landmarker("lbf", model_path=str(tmp_path / "lbfmodel.yaml"))


def test_torchvision_imports_with_torch():
    """PyPI's torchvision against the registry's torch build (a pinned CPU torch broke its import),
    and timm, which needs it, building and running a model."""
    import timm
    import torch
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]  # its C++ ops load
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2).eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)
