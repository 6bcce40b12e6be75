"""What every stage module shares: argument parsing, params loading and error exits.

Exit codes: 2 for a params.yaml that breaks the schema (before any work), 1 for bad input data
or an unusable tracking store; the message is always one line on stderr naming the file or key.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

# Progress bars redraw at most once a second: readable in `dvc repro` logs and CI output.
os.environ.setdefault("TQDM_MININTERVAL", "1")

from frgan.config import DATASET_NAMES, ParamsError, load_params, Params
from frgan.data.errors import DatasetError
from frgan.tracking import TrackingError


def registered_methods() -> dict:
    """Every method: FRGAN's variants (frgan.methods) and the baselines, which register on import."""
    import baselines  # noqa: F401  (registers the baselines)
    from frgan.methods import METHODS
    return METHODS


def check_methods(params: Params, source: str) -> None:
    known = registered_methods()
    for i, name in enumerate(params.train.methods):
        if name not in known:
            raise ParamsError(f"{source}: train.methods.{i} = {name!r}: expected one of {sorted(known)}")


def run(main: Callable[[Params, argparse.Namespace], None], parser: argparse.ArgumentParser) -> None:
    args = parser.parse_args()
    try:
        params = load_params(args.params)
        check_methods(params, args.params)
        if getattr(args, "method", None) is not None and args.method not in registered_methods():
            raise ParamsError(f"--method {args.method!r}: expected one of {sorted(registered_methods())}")
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        main(params, args)
    except (DatasetError, TrackingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


def parser(description: str, dataset: bool = False, method: bool = False) -> argparse.ArgumentParser:
    """The stage's command line: --params, and --dataset / --method for matrix stages."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    if dataset:
        p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    if method:
        p.add_argument("--method", required=True)   # checked against the registry by `run`
    return p
