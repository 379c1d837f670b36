"""Put an ImageNet classifier into the bucket as a new version of the `image` model.

    python -m train.image import --tflite PATH --labels PATH [--bucket model_bucket]
                                [--name image] [--mean M --std S] [--filter bilinear]
    python -m train.image keras [--weights imagenet|PATH|none] [--alpha 1.0] [--size 224]
                                [--quantize none|float16|int8] [--representative DIR]
                                [--labels FILE] [--bucket model_bucket] [--name image]
    python -m train.image finetune --data DIR [--weights imagenet|PATH|none] [--alpha 1.0]
                                [--size 224] [--epochs 10] [--fine-tune-layers N]
                                [--fine-tune-epochs 5] [--quantize int8|float] [--flip]
                                [--bucket model_bucket] [--name image]

`import` packages an existing `.tflite` classifier, quantized or float (works offline, no
TensorFlow). `keras` builds Keras MobileNetV2,
converts it and checks that the `.tflite` answers like Keras. `finetune` trains MobileNetV2
on your own photos (DIR holds one sub-folder per class of JPEG, PNG or WebP files).
All write `<bucket>/<name>/<version>/` (model.tflite, labels.txt, manifest.json last) and
then move `<bucket>/<name>/LATEST`, following model_bucket/README.md.
Exit codes: 0 done, 1 parity check failed (nothing written), 2 unusable input or no network.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from train.image_import import (
    DEFAULT_FILTER,
    DEFAULT_NAME,
    RESIZE_FILTERS,
    ImportRefused,
    import_version,
)

DEFAULT_BUCKET = Path("model_bucket")
EXIT_PARITY = 1
EXIT_INPUT = 2
DIGEST_CHARS = 12
Progress = Callable[[str], None]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m train.image",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="route", required=True,
                                     metavar="{import,keras,finetune}")
    imported = commands.add_parser("import", help="package an existing .tflite classifier")
    imported.add_argument("--tflite", type=Path, required=True, help="the .tflite classifier")
    imported.add_argument("--labels", type=Path, required=True, help="one label per line")
    imported.add_argument("--mean", type=float, help="pixel mean (with --std); default: "
                          "the input's zero point if quantized, else 127.5")
    imported.add_argument("--std", type=float, help="pixel std (with --mean); default: "
                          "1/scale if quantized, else 127.5")
    imported.add_argument("--filter", default=DEFAULT_FILTER, choices=RESIZE_FILTERS,
                          help=f"PIL resize filter (default {DEFAULT_FILTER})")
    built = commands.add_parser("keras", help="build, convert and check Keras MobileNetV2")
    built.add_argument("--weights", default="imagenet",
                       help="imagenet (needs the network), none (random) or a weights file")
    built.add_argument("--alpha", type=float, default=1.0, help="width multiplier (1.0)")
    built.add_argument("--size", type=int, default=224, help="input height and width (224)")
    built.add_argument("--quantize", default="none", choices=("none", "float16", "int8"),
                       help="none: float32; float16: float16 weights; int8: full-integer, "
                       "uint8 input and output (needs --representative)")
    built.add_argument("--representative", type=Path,
                       help="folder of images to calibrate int8 on and check parity with")
    built.add_argument("--labels", type=Path, help="label file (default: ImageNet names with "
                       "--weights imagenet, else class_0..class_999)")
    built.add_argument("--seed", type=int, default=42, help="random weights and images (42)")
    tuned = commands.add_parser("finetune", help="train MobileNetV2 on your own photos")
    tuned.add_argument("--data", type=Path, required=True,
                       help="folder with one sub-folder of photos per class")
    tuned.add_argument("--weights", default="imagenet",
                       help="imagenet (default; needs the network), a local Keras weights "
                       "file, or none (random: offline use and tests)")
    tuned.add_argument("--alpha", type=float, default=1.0, help="width multiplier (1.0)")
    tuned.add_argument("--size", type=int, default=224, help="input height and width (224)")
    tuned.add_argument("--epochs", type=int, default=10, help="epochs of the new head (10)")
    tuned.add_argument("--fine-tune-layers", type=int, default=0,
                       help="then unfreeze this many top base layers (0: none)")
    tuned.add_argument("--fine-tune-epochs", type=int, default=5,
                       help="epochs of fine-tuning those layers (5)")
    tuned.add_argument("--learning-rate", type=float, default=1e-3,
                       help="head's starting rate, decayed to 0 (1e-3)")
    tuned.add_argument("--batch-size", type=int, default=32, help="photos per step (32)")
    tuned.add_argument("--flip", action="store_true",
                       help="also mirror photos left-right when augmenting")
    tuned.add_argument("--quantize", default="int8", choices=("int8", "float"),
                       help="int8 (default; calibrated on training photos) or float32")
    tuned.add_argument("--seed", type=int, default=42, help="split, weights, augmentation (42)")
    for sub in (imported, built, tuned):
        sub.add_argument("--bucket", type=Path, default=DEFAULT_BUCKET, help="bucket folder")
        sub.add_argument("--name", default=DEFAULT_NAME, help="model name (folder in the bucket)")
        sub.add_argument("--quiet", action="store_true",
                         help="no progress lines; the summary is still printed")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.route == "import" and (args.mean is None) != (args.std is None):
        parser.error("give both --mean and --std, or neither")
    args.command = shlex.join(["python", "-m", "train.image", *argv])
    return args


class CommandFailed(Exception):
    """The command stops with `code`; the message says why (and nothing was written)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run_import(args: argparse.Namespace, say: Progress) -> tuple[Path, dict[str, Any]]:
    """The `import` route: (version folder, manifest)."""
    try:
        return import_version(args.tflite, args.labels, args.bucket, args.name, args.mean,
                              args.std, args.filter, command=args.command, progress=say)
    except ImportRefused as error:
        raise CommandFailed(f"nothing imported: {error}", EXIT_INPUT) from None


def run_keras(args: argparse.Namespace, say: Progress) -> tuple[Path, dict[str, Any]]:
    """The `keras` route (TensorFlow is imported only here): (version folder, manifest)."""
    say("Loading TensorFlow")
    from train import image_keras

    options = image_keras.KerasOptions(
        weights=args.weights, alpha=args.alpha, size=args.size, quantize=args.quantize,
        representative=args.representative, labels=args.labels, seed=args.seed)
    try:
        return image_keras.export_keras(options, args.bucket, args.name, args.command, say)
    except image_keras.DownloadError as error:
        raise CommandFailed(str(error), EXIT_INPUT) from None
    except (image_keras.InputError, ImportRefused) as error:
        raise CommandFailed(f"nothing exported: {error}", EXIT_INPUT) from None
    except image_keras.ParityError as error:
        raise CommandFailed(f"parity check failed, nothing exported: {error}",
                            EXIT_PARITY) from None


def run_finetune(args: argparse.Namespace, say: Progress) -> tuple[Path, dict[str, Any]]:
    """The `finetune` route (TensorFlow is imported only here): (version folder, manifest)."""
    from train import image_photos

    try:
        photos = image_photos.load_photos(args.data, args.size)
    except image_photos.InputError as error:
        raise CommandFailed(f"nothing exported: {error}", EXIT_INPUT) from None
    say("Loading TensorFlow")
    from train import image_finetune, image_keras

    options = image_finetune.FinetuneOptions(
        data=args.data, weights=args.weights, alpha=args.alpha, size=args.size,
        epochs=args.epochs, fine_tune_layers=args.fine_tune_layers,
        fine_tune_epochs=args.fine_tune_epochs, learning_rate=args.learning_rate,
        batch_size=args.batch_size, flip=args.flip, quantize=args.quantize, seed=args.seed)
    try:
        return image_finetune.export_finetuned(options, args.bucket, args.name, args.command,
                                               say, photos)
    except image_keras.DownloadError as error:
        raise CommandFailed(str(error), EXIT_INPUT) from None
    except (image_keras.InputError, image_photos.InputError, ImportRefused) as error:
        raise CommandFailed(f"nothing exported: {error}", EXIT_INPUT) from None
    except image_keras.ParityError as error:
        raise CommandFailed(f"parity check failed, nothing exported: {error}",
                            EXIT_PARITY) from None


ROUTES = {"import": run_import, "keras": run_keras, "finetune": run_finetune}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the process exit code."""
    args = parse_args(argv)
    say: Progress = (lambda _message: None) if args.quiet else _print_now
    route = ROUTES[args.route]
    try:
        folder, manifest = route(args, say)
    except CommandFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return failure.code
    print(summary(manifest, folder))
    return 0


def summary(manifest: Mapping[str, Any], version_folder: Path) -> str:
    """The one-screen end-of-run summary."""
    spec_in, spec_out, training = manifest["input"], manifest["output"], manifest["training"]
    norm, quant = spec_in["normalization"], spec_in["quantization"]
    out_q = spec_out["quantization"]
    lines = ["", "Image classifier exported", f"  source    {_source(training)}"]
    lines.append(
        f"  input     {spec_in['height']}x{spec_in['width']} RGB {spec_in['dtype']}, "
        f"{spec_in['resize']['filter']} stretch, (pixel - {norm['mean']:g}) / {norm['std']:g}"
        + (f", quantized scale {quant['scale']:.6g} zero point {quant['zero_point']}"
           if quant else ""))
    lines.append(
        f"  output    {spec_out['classes']} classes {spec_out['dtype']}"
        + (f" (scale {out_q['scale']:.6g}, zero point {out_q['zero_point']})" if out_q else "")
        + f", activation {spec_out['activation']}, label_offset {spec_out['label_offset']}")
    metrics = manifest["metrics"]
    if "test_accuracy" in metrics:
        lines.append(f"  accuracy  {metrics['test_accuracy']:.1%} Keras, "
                     f"{metrics['tflite_test_accuracy']:.1%} .tflite on "
                     f"{metrics['test_images']} held-out photos")
    if "parity_top1_agreement" in metrics:
        limit = metrics["parity_max_prob_diff_limit"]
        limit_text = "not bounded" if limit is None else f"limit {limit:g}"
        lines.append(
            f"  parity    top-1 agreement {metrics['parity_top1_agreement']:.0%} (needs "
            f"{metrics['parity_min_top1_agreement']:.0%}), max |keras - tflite| probability "
            f"{metrics['parity_max_prob_diff']:.3g} ({limit_text}) over "
            f"{metrics['parity_samples']} images")
    lines.append(f"  version   {version_folder}  (LATEST -> {manifest['version']})")
    return "\n".join(lines)


def _source(training: Mapping[str, Any]) -> str:
    if training["source"] == "finetune":
        data = training["data"]
        return (f"finetune MobileNetV2 alpha {training['alpha']:g} size {training['size']}, "
                f"weights {training['weights'].get('file', training['weights']['source'])}, "
                f"{training['quantize']}, classes {', '.join(data['classes'])}"
                + (f", {data['skipped']} file(s) skipped" if data["skipped"] else ""))
    if training["source"] == "import":
        model, labels = training["model"], training["labels"]
        return (f"import of {model['file']} (sha256 {model['sha256'][:DIGEST_CHARS]}…)"
                + f", labels {labels['file']}"
                + (" (leading 'background' line dropped)"
                   if labels["background_line_dropped"] else ""))
    weights = training["weights"]
    weights_text = weights.get("file", weights["source"])
    return (f"keras {training['architecture']} alpha {training['alpha']:g} size "
            f"{training['size']}, weights {weights_text}, quantize {training['quantize']}, "
            f"labels {training['labels']}")


def _print_now(message: str) -> None:
    """Print and flush (progress must show up while converting)."""
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
