"""68-point (iBUG) landmarkers (registry). ``predict(image_rgb, box) -> (68, 2) float32`` in frame
pixels.

``dlib68``: dlib's predictor shipped inside the ``face_recognition_models`` package (no download).
``lbf``: OpenCV-contrib FacemarkLBF, the paper's landmarker, with a user-supplied lbfmodel.yaml.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional

import numpy as np

from ..registry import Registry

LANDMARKERS = Registry("landmarker")


def create_landmarker(name: str, **kwargs):
    return LANDMARKERS.create(name, **kwargs)


def dlib68_model_path() -> str:
    # face_recognition_models' own helper imports pkg_resources (gone with setuptools >= 81):
    # locate the package folder without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face_recognition_models is not installed: pip install face_recognition_models")
    path = os.path.join(list(spec.submodule_search_locations)[0], "models",
                        "shape_predictor_68_face_landmarks.dat")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"dlib 68-point model missing at {path}")
    return path


@LANDMARKERS.register("dlib68")
class Dlib68Landmarker:
    """dlib's 68-point predictor (``model_path``: default, the one in face_recognition_models)."""

    def __init__(self, model_path: Optional[str] = None):
        try:
            import dlib
        except ImportError as exc:
            raise ImportError("dlib is not installed: pip install dlib-bin") from exc
        self._dlib = dlib
        self.predictor = dlib.shape_predictor(model_path or dlib68_model_path())

    def predict(self, image_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        x, y, w, h = (int(v) for v in box)
        rect = self._dlib.rectangle(x, y, x + w, y + h)
        shape = self.predictor(np.ascontiguousarray(image_rgb), rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


@LANDMARKERS.register("lbf")
class LbfLandmarker:
    """OpenCV-contrib's FacemarkLBF, the paper's landmarker (``model_path``: an lbfmodel.yaml)."""

    def __init__(self, model_path: Optional[str] = None):
        import cv2

        if not model_path:
            raise ValueError("the lbf landmarker needs extract.lbf_model_path (an lbfmodel.yaml file)")
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"LBF model not found: {model_path}")
        if not hasattr(cv2, "face") or not hasattr(cv2.face, "createFacemarkLBF"):
            raise ImportError(
                "cv2.face.createFacemarkLBF is missing: opencv-python-headless overwrote the contrib "
                "build; run: pip install --force-reinstall --no-deps 'opencv-contrib-python-headless<5'"
            )
        self.facemark = cv2.face.createFacemarkLBF()
        self.facemark.loadModel(model_path)

    def predict(self, image_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        import cv2

        gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        ok, landmarks = self.facemark.fit(gray, np.asarray([box], dtype=np.int32))
        if not ok:
            raise RuntimeError("FacemarkLBF failed to fit")
        return np.asarray(landmarks[0], dtype=np.float32).reshape(68, 2)
