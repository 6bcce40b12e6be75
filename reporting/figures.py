"""The report's seaborn figures: per class, per frame, published against reproduced, ACD points.
"""
from __future__ import annotations

import math
from pathlib import Path

from frgan.paths import PLOTS_DIR, seed_of_name
from reporting.layout import DATASET_TITLES, NOT_RUN, PAPER_DATASET
from reporting.results import Evaluations
from reporting.tables import Table


def class_scores(evaluations: Evaluations, dataset: str, metric: str):
    """Per class and method: the metric's mean and 95% interval from '<metric>/<class>' keys."""
    import pandas as pd
    records = [{"method": method, "class": key.split("/", 1)[1], "mean": s.mean, "low": s.low, "high": s.high}
               for (ds, method), scores in sorted(evaluations.items()) if ds == dataset
               for key, s in scores.items() if key.startswith(f"{metric}/")]
    return pd.DataFrame.from_records(records, columns=["method", "class", "mean", "low", "high"])


def plot_per_class(frame, dataset: str, metric: str, profile: str, path: Path) -> None:
    """Fig. 7 style: one bar per class and method, with its 95% interval."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    classes, methods = sorted(frame["class"].unique()), sorted(frame["method"].unique())
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(classes) + 2), 4))
    if frame.empty:
        ax.text(0.5, 0.5, f"no evaluate results on {dataset}", ha="center", va="center")
        ax.set_axis_off()
    else:
        sns.barplot(frame, x="class", y="mean", hue="method", order=classes, hue_order=methods,
                    errorbar=None, ax=ax)
        width = 0.8 / len(methods)   # seaborn's dodge: hue levels share 0.8 of each slot
        for _, r in frame.iterrows():
            x = classes.index(r["class"]) - 0.4 + (methods.index(r["method"]) + 0.5) * width
            ax.errorbar(x, r["mean"], yerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]],
                        color="black", capsize=2, linewidth=1)
        ax.set_xlabel("action class")
        ax.set_ylabel(f"{metric.upper()} (dB)" if metric == "psnr" else metric)
        ax.tick_params(axis="x", rotation=30)
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title(f"{metric.upper()} per class on {DATASET_TITLES.get(dataset, dataset)}, profile {profile}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_published_vs_reproduced(tables: list[Table], profile: str, path: Path) -> None:
    """One panel per table column: reproduced (with its interval) against published, and y = x."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    import seaborn as sns
    panels = [(t, c) for t in tables for c in t.spec.columns if c.in_paper and t.datasets[c.task]]
    ncols = 4
    nrows = max(1, math.ceil(len(panels) / ncols))   # >= 1: a graph may leave no panel at all
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (table, column) in zip(axes.flat, panels):
        points = [(row.label, cell.published, cell.reproduced) for row in table.spec.rows
                  for cell in [table.cells[(row.label, column.label)]]
                  if cell.reproduced is not None and cell.published is not None]
        ax.set_title(f"Table {table.spec.number}, {column.label}\n"
                     f"{table.datasets[column.task]} vs {PAPER_DATASET[column.task]}", fontsize=9)
        ax.set_xlabel(f"published ({PAPER_DATASET[column.task]})")
        ax.set_ylabel(f"reproduced ({table.datasets[column.task]})")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        if not points:
            ax.text(0.5, 0.5, NOT_RUN, ha="center", va="center", transform=ax.transAxes)
            continue
        sns.scatterplot(x=[p for _, p, _ in points], y=[r.mean for _, _, r in points],
                        hue=[label for label, _, _ in points], ax=ax, s=40, legend=False)
        for label, pub, r in points:
            ax.errorbar(pub, r.mean, yerr=[[r.mean - r.low], [r.high - r.mean]], color="gray", linewidth=1)
            ax.annotate(label, (pub, r.mean), fontsize=7, xytext=(3, 3), textcoords="offset points")
        values = [p for _, p, _ in points] + [r.low for *_, r in points] + [r.high for *_, r in points]
        ax.plot([min(values), max(values)], [min(values), max(values)], "k--", linewidth=0.8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(f"Published vs reproduced, profile {profile} (dashed: y = x)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def frame_scores(folder: Path, dataset: str, metric: str):
    """Per method and frame index: the metric's mean over test videos (and training seeds), from the
    per-frame CSVs <folder>/evaluate-<dataset>-<method>-seed<s>.csv."""
    import pandas as pd
    prefix = f"evaluate-{dataset}-"
    by_method: dict[str, list] = {}
    for path in sorted(Path(folder).glob(f"{prefix}*.csv")):
        raw = pd.read_csv(path)
        if metric not in raw.columns or "frame" not in raw.columns:
            continue
        name = path.stem[len(prefix):]
        seed = seed_of_name(name)
        method = name if seed is None else name[:-len(f"-seed{seed}")]
        by_method.setdefault(method, []).append(raw[["frame", metric]])
    frames = []
    for method, parts in by_method.items():
        per_frame = pd.concat(parts).groupby("frame", as_index=False)[metric].mean()
        per_frame.insert(0, "method", method)
        frames.append(per_frame)
    if not frames:
        return pd.DataFrame(columns=["method", "frame", metric])
    return pd.concat(frames, ignore_index=True)


def plot_per_frame(frame, dataset: str, metric: str, profile: str, path: Path) -> None:
    """Fig. 6 style: the metric against the frame index, one line per method (mean over videos)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if frame.empty:
        ax.text(0.5, 0.5, f"no per-frame results on {dataset}", ha="center", va="center")
        ax.set_axis_off()
    else:
        methods = sorted(frame["method"].unique())
        sns.lineplot(frame, x="frame", y=metric, hue="method", style="method", hue_order=methods,
                     style_order=methods, markers=True, dashes=False, alpha=0.85, ax=ax)
        ax.set_xlabel("generated frame index")
        ax.set_ylabel(f"{metric.upper()} (dB), mean over test videos" if metric == "psnr" else metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title(f"{metric.upper()} per frame on {DATASET_TITLES.get(dataset, dataset)}, profile {profile}\n"
                     "mean over test videos; each method's own marker (coinciding lines hide each other)",
                     fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def acd_points(evaluations: Evaluations, dataset: str):
    """Per method with both ACD metrics on the dataset: ACD-I and ACD-C with their 95% intervals."""
    import pandas as pd
    records = [{"method": method, "acd_i": s["acd_i"].mean, "acd_i_low": s["acd_i"].low,
                "acd_i_high": s["acd_i"].high, "acd_c": s["acd_c"].mean, "acd_c_low": s["acd_c"].low,
                "acd_c_high": s["acd_c"].high, "reference": method == "reference"}
               for (ds, method), s in sorted(evaluations.items())
               if ds == dataset and "acd_i" in s and "acd_c" in s]
    return pd.DataFrame.from_records(records, columns=["method", "acd_i", "acd_i_low", "acd_i_high", "acd_c",
                                                       "acd_c_low", "acd_c_high", "reference"])


def plot_acd(frame, dataset: str, profile: str, path: Path) -> None:
    """ACD-I against ACD-C per method, with 95% intervals; lower-left is better."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(7.5, 5))
    if frame.empty:
        ax.text(0.5, 0.5, f"no ACD results on {dataset}", ha="center", va="center")
        ax.set_axis_off()
    else:
        methods = list(frame["method"])
        sns.scatterplot(frame, x="acd_i", y="acd_c", hue="method", hue_order=methods, style="reference",
                        markers={False: "o", True: "*"}, size="reference", sizes={False: 60, True: 220},
                        legend=False, ax=ax, zorder=3)
        palette = dict(zip(methods, sns.color_palette(n_colors=len(methods))))
        for _, r in frame.iterrows():
            ax.errorbar(r["acd_i"], r["acd_c"], xerr=[[r["acd_i"] - r["acd_i_low"]], [r["acd_i_high"] - r["acd_i"]]],
                        yerr=[[r["acd_c"] - r["acd_c_low"]], [r["acd_c_high"] - r["acd_c"]]],
                        color=palette[r["method"]], capsize=3, linewidth=1, zorder=2)
            ax.annotate(r["method"] + (" (real videos)" if r["reference"] else ""), (r["acd_i"], r["acd_c"]),
                        fontsize=8, xytext=(5, 4), textcoords="offset points")
        ax.set_xlabel("ACD-I (identity: generated vs input frame; lower is better)")
        ax.set_ylabel("ACD-C (content consistency; lower is better)")
        ax.grid(alpha=0.3)
        ax.margins(0.12)
        ax.set_title(f"ACD per method on {DATASET_TITLES.get(dataset, dataset)}, profile {profile}\n"
                     "error bars: 95% bootstrap intervals", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_figures(tables: list[Table], evaluations: Evaluations, faces_dataset: str, actors_dataset: str,
                  profile: str, folder: Path, plots_dir: Path = PLOTS_DIR) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    written = []   # a null dataset (a one-kind graph) has no figures of its own
    if actors_dataset is not None:
        per_class = folder / "psnr-per-class.png"
        plot_per_class(class_scores(evaluations, actors_dataset, "psnr"), actors_dataset, "psnr", profile, per_class)
        written.append(per_class)
    versus = folder / "published-vs-reproduced.png"
    plot_published_vs_reproduced(tables, profile, versus)
    written.append(versus)
    if actors_dataset is not None:
        per_frame = folder / "psnr-per-frame.png"
        plot_per_frame(frame_scores(plots_dir, actors_dataset, "psnr"), actors_dataset, "psnr", profile, per_frame)
        written.append(per_frame)
    if faces_dataset is not None:
        acd = folder / "acd-faces.png"
        plot_acd(acd_points(evaluations, faces_dataset), faces_dataset, profile, acd)
        written.append(acd)
    return written
