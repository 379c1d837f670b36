"""Auto MPG as a preset of the tabular exporter (train.tabular): one new bucket version.

    python -m train.mpg [--data auto-mpg.csv] [--seed 42] [--epochs 1000]
                        [--bucket model_bucket] [--name mpg] [--quiet]

The data is vega_datasets' cars.json (or the classic UCI CSV, '?' = missing), the features the
lesson's seven with their units and descriptions, origin as the codes 1 USA, 2 Europe,
3 Japan; rows without an mpg are dropped and missing horsepower gets the training split's
median. Everything else (the default network, the fixed split, early stopping, the parity
check on every row, the report and the manifest) is train.tabular's.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from modelserve import contract
from train import mpg_data, tabular
from train.tabular_data import FeatureInfo, TableRequest, prepare

DEFAULT_MAX_EPOCHS = 1000
DEFAULT_PATIENCE = 50
DEFAULT_BUCKET = Path("model_bucket")
DEFAULT_NAME = "mpg"
EXIT_PARITY = tabular.EXIT_PARITY
EXIT_BAD_DATA = tabular.EXIT_INPUT
OUTPUT = {"unit": "miles per gallon"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m train.mpg", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data", type=Path, help="UCI-style CSV ('?' = missing); default: vega_datasets cars.json"
    )
    parser.add_argument("--seed", type=int, default=mpg_data.DEFAULT_SEED, help="default 42")
    parser.add_argument(
        "--epochs",
        type=tabular.positive_int,
        default=DEFAULT_MAX_EPOCHS,
        help=f"maximum epochs; early stopping usually ends sooner (default {DEFAULT_MAX_EPOCHS})",
    )
    parser.add_argument("--bucket", type=Path, default=DEFAULT_BUCKET, help="bucket folder")
    parser.add_argument("--name", default=DEFAULT_NAME, help="model name (folder in the bucket)")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines; the summary is still printed"
    )
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command = shlex.join(["python", "-m", "train.mpg", *argv])
    return args


def table_request(seed: int) -> TableRequest:
    """The preset: the seven features, their units, descriptions and types, origin's codes."""
    info = {
        name: FeatureInfo(
            unit=mpg_data.FEATURE_INFO[name]["unit"],
            description=mpg_data.FEATURE_INFO[name]["description"],
            type="integer" if name in mpg_data.INTEGER_FEATURES else "number",
            allowed=mpg_data.ORIGIN_NAMES if name == "origin" else None,
        )
        for name in mpg_data.FEATURES
    }
    return TableRequest(target=mpg_data.TARGET, features=mpg_data.FEATURES,
                        task=contract.TASK_REGRESSION,
                        impute_median=(mpg_data.IMPUTED_FEATURE,), info=info, seed=seed)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the process exit code."""
    args = parse_args(argv)
    say = (lambda _message: None) if args.quiet else tabular.print_now
    try:
        table = prepare(mpg_data.load_data(args.data), table_request(args.seed))
    except (OSError, ValueError, KeyError) as error:
        print(f"error: cannot load the data: {error}", file=sys.stderr)
        return EXIT_BAD_DATA
    source = mpg_data.data_path(args.data)
    export = tabular.Export(
        name=args.name, bucket=args.bucket,
        data={"source": "vega_datasets" if args.data is None else "csv",
              "file": "vega_datasets/_data/cars.json" if args.data is None else str(args.data),
              "sha256": contract.sha256_file(source), "description": "UCI Auto MPG"},
        command=args.command, max_epochs=args.epochs, patience=DEFAULT_PATIENCE,
        seed=args.seed, output=OUTPUT, title="Auto MPG")
    try:
        folder, manifest = tabular.run(export, table, say)
    except tabular.CommandFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return failure.code
    print(tabular.summary(manifest, folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
