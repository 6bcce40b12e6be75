"""prepare@<dataset>: raw or generated videos -> the clip store, a contact sheet, counts.

    python -m pipelines.prepare --dataset faces-synth

Outs: data/prepared/<dataset>/ (the clip store), reports/figures/prepare-<dataset>.png (sample
frames per class), reports/metrics/prepare-<dataset>.json (clip and frame counts per split).
"""
from __future__ import annotations

if __name__ == "__main__":   # first: MLflow imports in a helper process meanwhile (frgan.tracking.prestart)
    from frgan.tracking import prestart
    prestart()

import json
import time

from tqdm import tqdm

from frgan import tracking
from frgan.config import Params
from frgan.data.clipstore import ClipStore, write_clip_store
from frgan.data.sheet import write_contact_sheet
from frgan.data.sources import SOURCES
from frgan.io import atomic_file
from pipelines import _stage
from frgan.paths import store_path


def main(params: Params, args) -> None:
    name = args.dataset
    with tracking.start_run(f"prepare@{name}", params, tags={"dataset": name}):
        source = SOURCES[name](params)
        started = time.perf_counter()
        records = tqdm(source.records, total=source.expected_videos, unit="video",
                       desc=f"prepare@{name}", mininterval=1.0)
        meta = write_clip_store(records, store_path(name),
                                meta={"dataset": name, "profile": params.profile, "source": source.settings},
                                extras=source.extras)
        seconds = time.perf_counter() - started
        store = ClipStore(store_path(name))
        sheet = f"reports/figures/prepare-{name}.png"
        write_contact_sheet(store, params.prepare.sheet_per_class, sheet)
        # Counts only: this file is a DVC metric and must be byte-identical across reruns.
        counts = {"clips": meta["n_clips"], "frames": meta["n_frames"], "size": meta["height"],
                  "classes": len(meta["labels"]), **{f"clips_{s}": n for s, n in meta["clips_per_split"].items()}}
        with atomic_file(f"reports/metrics/prepare-{name}.json") as tmp:
            tmp.write_text(json.dumps({"dataset": name, "fingerprint": meta["fingerprint"], **counts},
                                      indent=2, sort_keys=True) + "\n")
        tracking.set_tags({"dataset_fingerprint": meta["fingerprint"]})
        tracking.log_params({f"source.{k}": v for k, v in source.settings.items()})
        tracking.log_metrics({**counts, "frames_per_s": meta["n_frames"] / max(seconds, 1e-9)})
        tracking.log_artifact(sheet)
    print(f"prepare@{name}: {meta['n_clips']} clips, {meta['n_frames']} frames in {seconds:.1f} s "
          f"-> {store_path(name)} (fingerprint {meta['fingerprint'][:12]})")


if __name__ == "__main__":
    p = _stage.parser(__doc__.splitlines()[0], dataset=True)
    _stage.run(main, p)
