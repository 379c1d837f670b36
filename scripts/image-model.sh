#!/usr/bin/env bash
# `make serve`'s one-time image step: put an image classifier into model_bucket/image.
#   1. IMAGENET_TFLITE set: import that .tflite (labels: imagenet_labels.txt beside it);
#   2. else the Keras route: install the training tools, download MobileNetV2's ImageNet
#      weights and export them (needs the network; a minute or two, with progress);
#   3. when neither works: one line saying what to run. It never fails make serve: the caller
#      starts classify_image anyway, which then explains its 503.
# A model already in model_bucket/image is reused.
set -uo pipefail
bin="${1:?usage: scripts/image-model.sh VENV_BIN}"
bucket="model_bucket"

if [ -f "$bucket/image/LATEST" ]; then
  exit 0
fi
if [ -n "${IMAGENET_TFLITE:-}" ]; then
  echo "classify_image: importing $IMAGENET_TFLITE into $bucket/image (one time)"
  if "$bin/python" -m train.image import --tflite "$IMAGENET_TFLITE" \
      --labels "$(dirname "$IMAGENET_TFLITE")/imagenet_labels.txt" --bucket "$bucket"; then
    exit 0
  fi
else
  echo "classify_image: no model yet; building Keras MobileNetV2 with ImageNet weights" \
    "(one time: installs TensorFlow, downloads ~14 MB of weights)"
  if "$bin/pip" install --progress-bar on --group train \
      && "$bin/python" -m train.image keras --weights imagenet --bucket "$bucket"; then
    exit 0
  fi
fi
echo "classify_image: no image model, so it answers 503: set IMAGENET_TFLITE=/path/to/model.tflite" \
  "(imagenet_labels.txt beside it) or run 'make models' with network access, then make serve again."
exit 0
