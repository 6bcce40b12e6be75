"""What every stage module shares: argument parsing, params loading and error exits.

Exit codes: 2 for a bad command line or a params.yaml that breaks the schema (before any work);
1 for bad input data, an unusable tracking store, a missing model file, a refused (unsafe) or
mismatched checkpoint, a diverged training run, a full disk or an out-of-memory device. The
message is always one line on stderr naming the file or key and what was expected; the stage's
outs are written atomically (frgan.io), so a failure leaves the earlier outs as they were.
Anything else is a bug and keeps its traceback. tests/test_bad_inputs.py lists every case.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import pickle
import sys
from typing import TYPE_CHECKING, Callable, NoReturn

from frgan.config import DATASET_NAMES, ParamsError, load_params, Params
from frgan.data.errors import DatasetError
from frgan.io import atomic_file, exit_without_teardown
from frgan.tracking import TrackingError, close_helper

if TYPE_CHECKING:
    import pandas as pd


def registered_methods() -> dict:
    """Every method: FRGAN's variants (frgan.methods) and the baselines, which register on import."""
    from frgan.methods import registered
    return registered()


def check_methods(params: Params, source: str) -> None:
    known = registered_methods()
    for i, name in enumerate(params.train.methods):
        if name not in known:
            raise ParamsError(f"{source}: train.methods.{i} = {name!r}: expected one of {sorted(known)}")
    for name, knobs in params.train.baselines.items():   # after the active profile's train block
        if name not in known:
            raise ParamsError(f"{source}: train.baselines.{name}: expected one of {sorted(known)}")
        try:
            known[name].check_knobs(knobs)
        except ParamsError as exc:
            raise ParamsError(f"{source}: {exc}") from None


def _fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr (newlines folded), then exit with `code`."""
    sys.stdout.flush()
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    sys.exit(code)


def _batch_key(main: Callable, params: Params, args: argparse.Namespace) -> str:
    """The params key whose value sets the batch of what ran out of memory, with its value."""
    from frgan.config import ACTOR_DATASETS
    if main.__module__.endswith("conditions") and getattr(args, "dataset", None) in ACTOR_DATASETS:
        return f"conditions.pose_lstm_batch (now {params.conditions.pose_lstm_batch})"
    return f"profiles.{params.profile}.batch (now {params.size.batch})"


def _explain(exc: BaseException, main: Callable, params: Params, args: argparse.Namespace) -> str | None:
    """The one-line message for a failure that is not a bug, or None for one that is."""
    if isinstance(exc, (DatasetError, TrackingError)):
        return str(exc)
    checkpoint = sys.modules.get("frgan.train.checkpoint")   # not imported: not raised either
    if checkpoint is not None and isinstance(exc, checkpoint.CheckpointError):
        return str(exc)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        what = ". ".join(str(exc).strip().split(". ")[:2]).splitlines()[0].rstrip(".")
        return (f"out of memory ({what}); lower {_batch_key(main, params, args)} in "
                f"{args.params}, or choose a smaller profile")
    diverged = sys.modules.get("frgan.train.loop")
    if diverged is not None and isinstance(exc, diverged.TrainingDiverged):
        return f"{exc}; lower train.lr (now {params.train.lr}) in {args.params} or check the inputs"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        where = getattr(exc, "out_path", None) or exc.filename
        reason = os.strerror(exc.errno) + (" (the file-size limit)" if exc.errno == errno.EFBIG else "")
        return (f"{where or 'an output'}: cannot write it: {reason}; nothing was replaced (earlier outputs "
                "are kept); free some space and rerun")
    if isinstance(exc, pickle.UnpicklingError):   # torch.load(weights_only=True) refused a file
        from frgan.train.checkpoint import refused
        return str(refused(_loading(exc), exc))
    if isinstance(exc, FileNotFoundError):   # model files the user provides (weights, predictors)
        return str(exc) if exc.filename is None else f"{exc.filename}: file not found ({exc.strerror})"
    return None


def _loading(exc: BaseException) -> str | None:
    """The path torch.load was reading when `exc` was raised (its frame's `f`), if a path."""
    tb, path = exc.__traceback__, None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "load" and frame.f_globals.get("__name__") == "torch.serialization":
            f = frame.f_locals.get("f")
            path = os.fspath(f) if isinstance(f, (str, os.PathLike)) else path
        tb = tb.tb_next
    return path


def run(main: Callable[[Params, argparse.Namespace], None], parser: argparse.ArgumentParser,
        registry: bool = True) -> None:
    """Parse, load params.yaml, check it, then `main(params, args)`; failures as in the docstring.

    registry: check train.methods, train.baselines and --method against the method registry, which
    imports every method's code (torch and all). The stages that run methods (train, generate) and
    the first stages of the graph (prepare, conditions: a misspelt method stops `dvc repro` before
    any work) do; the scoring stages (evaluate, reference, report) run no method code and check
    --method against train.methods only, saving the 1.4 s of importing torch in each of them."""
    args = parser.parse_args()
    try:
        params = load_params(args.params)
        if registry:
            check_methods(params, args.params)
        method = getattr(args, "method", None)
        known = sorted(registered_methods()) if registry else params.train.methods
        if method is not None and method not in known:
            where = "" if registry else "train.methods "
            raise ParamsError(f"--method {method!r}: expected one of {where}{known}")
        if hasattr(args, "seed"):
            args.seed = resolve_seed(params, args.seed)
    except ParamsError as exc:
        _fail(str(exc), 2)
    try:
        main(params, args)
    except Exception as exc:
        message = _explain(exc, main, params, args)
        if message is None:
            raise
        _fail(message, 1)
    if main.__module__ == "__main__":   # the stage runs as a program (`python -m pipelines.<stage>`)
        close_helper()                  # every MLflow write done
        exit_without_teardown()


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse prints the usage first): `error: ...`, exit 2."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{self.prog}: {message} (see --help)", 2)

    def format_help(self) -> str:   # the registry only when help is shown: parsing stays torch-free
        for action in (a for a in self._actions if a.dest == "method" and a.help is None):
            action.help = "one of the registered methods: " + ", ".join(sorted(registered_methods()))
        return super().format_help()


def resolve_seed(params: Params, seed: int | None) -> int:
    """--seed: one of train.seeds (the matrix items); absent: the first of them."""
    if seed is None:
        return params.train.seeds[0]
    if seed not in params.train.seeds:
        raise ParamsError(f"--seed {seed}: expected one of train.seeds {params.train.seeds} (params.yaml)")
    return seed


def seeded(params: Params, seed: int) -> Params:
    """The params a training run with seed item `seed` sees: master seed + seed (config.Train.seeds)."""
    return params.model_copy(update={"seed": params.seed + seed})


def parser(description: str, dataset: bool = False, method: bool = False,
           seed: bool = False) -> argparse.ArgumentParser:
    """The stage's command line: --params, and --dataset / --method / --seed for matrix stages."""
    module = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    p = _Parser(prog=module if module.startswith("frgan-") else f"python -m pipelines.{module}", description=description)
    p.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    if dataset:
        p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    if method:
        p.add_argument("--method", required=True)   # checked against the registry by `run`
    if seed:
        p.add_argument("--seed", type=int, default=None,
                       help="training seed, one of train.seeds (default: the first)")
    return p


def write_scores(stage: str, params: Params, dataset: str, method: str, seed: int | None,
                 compute: Callable[[], tuple[dict, "pd.DataFrame", "pd.DataFrame"]]) -> None:
    """Run `compute` inside the stage's MLflow run; write the metrics JSON, the per-frame CSV and
    the per-video CSV (seed None: the reference row, no seed in the names)."""
    from frgan import tracking
    from frgan.paths import METRICS_DIR, PLOTS_DIR, VIDEOS_DIR, result_name
    tags = {"dataset": dataset, "method": method, **({} if seed is None else {"seed": str(seed)})}
    name = result_name(dataset, method, seed)
    with tracking.start_run(stage, params, tags=tags):
        result, frames, per_video = compute()
        with atomic_file(METRICS_DIR / f"{name}.json") as tmp:
            tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        with atomic_file(PLOTS_DIR / f"{name}.csv") as tmp:
            frames.round(6).to_csv(tmp, index=False, lineterminator="\n")
        with atomic_file(VIDEOS_DIR / f"{name}.csv") as tmp:
            per_video.round(6).to_csv(tmp, index=False, lineterminator="\n")
        headline = {k: v["mean"] for k, v in result.items() if isinstance(v, dict) and "/" not in k}
        tracking.log_metrics(headline)
    print(f"{stage}: " + ", ".join(f"{k}={v:.4g}" for k, v in headline.items()))
