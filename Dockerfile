# Image for the nodes of a difffake-ray cluster (head and workers), on the official Ray image of
# the Ray version pyproject.toml pins. Jobs submitted with `cli.py submit` ship the project as
# their working_dir; this image holds every dependency, so nothing is installed at run time.
#
#   docker build -t difffake-ray:cpu .
#   docker build -t difffake-ray:gpu --build-arg VARIANT=cu128 .
#   docker build -t difffake-ray:gpu --build-arg VARIANT=cu128 --build-arg PRETRAINED=efficientnet_b4 .
ARG RAY_VERSION=2.60.0
ARG PYTHON_TAG=py311
# cpu, or the CUDA variant of the official image for GPU nodes (e.g. cu128)
ARG VARIANT=cpu
FROM rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${VARIANT}

# timm model whose ImageNet weights are fetched at build time (empty: none), so training on nodes
# without internet still starts from ImageNet; the runtime then stays offline.
ARG PRETRAINED=""

WORKDIR /home/ray/difffake-ray

# Dependencies first, in their own layer: it changes only with pyproject.toml.
COPY --chown=ray:users pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt s3fs gcsfs

COPY --chown=ray:users cli.py ./
COPY --chown=ray:users difffake_ray ./difffake_ray
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users configs ./configs
RUN pip install --no-cache-dir --no-deps -e .

# opencv-python-headless (albumentations' dependency) and the contrib wheel write the same cv2
# files: make sure contrib's cv2.face won, and that the Haar cascades and dlib's model are there.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -c "import cv2; cv2.face.createFacemarkLBF" 2>/dev/null \
    || pip install --no-cache-dir --force-reinstall --no-deps \
         "opencv-contrib-python-headless==$(python -c 'import importlib.metadata as m; print(m.version("opencv-python-headless"))')"; \
    python -c "import cv2; cv2.face.createFacemarkLBF; \
from difffake_ray.faces.detectors import create_detector; create_detector('haar'); \
from difffake_ray.faces.landmarkers import create_landmarker; create_landmarker('dlib68')"

RUN if [ -n "$PRETRAINED" ]; then \
      python -c "import sys, timm; timm.create_model(sys.argv[1], pretrained=True)" "$PRETRAINED"; \
    fi
ENV HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
