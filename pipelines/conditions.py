"""conditions@<dataset>: the motion-condition generator G_C (paper 3.1).

    python -m pipelines.conditions --dataset actors-synth

Faces: 3DMM fit of every frame -> normal maps, and the retargeting sets for evaluation.
Actors: the pose LSTM trained on every training clip (gm + gr) and its predictions for the test split.
Outs: data/conditions/<dataset>/, reports/figures/conditions-<dataset>*.png,
reports/metrics/conditions-<dataset>.json.
"""
from __future__ import annotations

if __name__ == "__main__":   # first: MLflow imports in a helper process meanwhile (frgan.tracking.prestart)
    from frgan.tracking import prestart
    prestart()

import json
from pathlib import Path

from frgan import tracking
from frgan.config import ACTOR_DATASETS, Params
from frgan.data.clipstore import ClipStore
from frgan.io import atomic_dir, atomic_file
from pipelines import _stage
from frgan.paths import conditions_path, store_path


def _actors(params: Params, store: ClipStore, out: Path) -> dict[str, float]:
    from frgan.conditions.actors import PoseSettings, build_actor_conditions
    size = params.size
    cfg = PoseSettings(n_obs=size.pose_observe, n_pred=size.pose_predict, hidden=size.pose_lstm_hidden,
                       steps=size.pose_lstm_steps, batch=params.conditions.pose_lstm_batch, seed=params.seed,
                       device=params.device)
    return build_actor_conditions(store, cfg, out, log=lambda m, step: tracking.log_metrics(m, step=step))


def _faces(params: Params, store: ClipStore, out: Path) -> dict[str, float]:
    from frgan.conditions.faces import build_face_conditions
    return build_face_conditions(store, params, out, log=lambda m, step: tracking.log_metrics(m, step=step))


def main(params: Params, args) -> None:
    name = args.dataset
    store = ClipStore(store_path(name))
    with tracking.start_run(f"conditions@{name}", params, dataset_fingerprint=store.fingerprint,
                            tags={"dataset": name}):
        build = _actors if name in ACTOR_DATASETS else _faces
        with atomic_dir(conditions_path(name)) as tmp:
            summary = build(params, store, tmp)
        figure = Path(f"reports/figures/conditions-{name}.png")
        if name in ACTOR_DATASETS:
            from frgan.conditions.actors import plot_actor_conditions
            plot_actor_conditions(store, Path(conditions_path(name)), figure)
        else:
            from frgan.conditions.faces import plot_face_conditions
            plot_face_conditions(store, Path(conditions_path(name)), figure)
        with atomic_file(f"reports/metrics/conditions-{name}.json") as tmp:
            tmp.write_text(json.dumps({k: round(v, 6) for k, v in summary.items()}, indent=2,
                                      sort_keys=True) + "\n")
        tracking.log_metrics(summary)
        tracking.log_artifact(figure)
    print(f"conditions@{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))


if __name__ == "__main__":
    p = _stage.parser(__doc__.splitlines()[0], dataset=True)
    _stage.run(main, p)
