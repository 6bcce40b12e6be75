"""dvc.yaml's deps are complete: every project file a stage's command imports is under a dep it
declares, so that `dvc repro` after an edit reruns every stage the edit can change.

`missing_deps` derives each stage's import closure from its `python -m <module>` (ast: every
Import/ImportFrom anywhere in a module, function bodies included; a package's __init__ that
imports its modules by name through importlib counts as importing all of them) and names each
stage and file not covered. `unneeded_deps` names a declared code dep that holds no file of the
closure (so no stage depends on everything). Then DVC itself: a baseline edit marks the train
stages changed, and a changed raw dataset tree marks prepare changed (pipelines/rawscan.py).
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PACKAGES = ("pipelines", "frgan", "baselines", "metrics", "reporting")

# The one import edge not followed for every stage: `_stage.registered_methods` imports the
# method registry (frgan.methods, which imports every baseline: all the model code) only to check
# the names in train.methods / --method. A stage whose entry module never looks a method up
# (`get_method`) runs none of that code, so a baseline edit cannot change its outs; following
# the edge there would make prepare depend on every network and rerun the whole graph after
# any model edit. Stages that do look methods up (train, generate) follow it.
REGISTRY = ("pipelines/_stage.py", "registered_methods")
RUNS_METHODS = "get_method"
# `frgan.load` (frgan/__init__.py) imports frgan.api, which rebuilds any method's networks for a
# researcher; no stage calls it, so its body is never followed.
API = ("frgan/__init__.py", "load")


def module_file(name: str, repo: Path = REPO) -> Path | None:
    """The project file of a dotted module name (package -> its __init__.py), or None."""
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = repo.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def _module_name(path: Path, repo: Path) -> str:
    parts = list(path.relative_to(repo).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _nodes(tree: ast.AST, skip_function: str | None):
    """Every node of tree, less the body of the function named skip_function."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == skip_function:
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def imported_files(path: Path, repo: Path = REPO, skip_function: str | None = None) -> set[Path]:
    """The project files that `path` imports anywhere (module level or inside functions)."""
    me = _module_name(path, repo)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    names, dynamic = set(), False
    for node in _nodes(ast.parse(path.read_text()), skip_function):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: `from . import x`, `from .base import y`
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)   # `from pkg import submodule`
        elif isinstance(node, ast.Call):
            func = node.func
            dynamic |= (isinstance(func, ast.Attribute) and func.attr == "import_module") or \
                       (isinstance(func, ast.Name) and func.id == "__import__")
    found = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):   # importing a.b.c runs a/__init__ and a/b/__init__ too
            file = module_file(".".join(parts[:i]), repo)
            if file is not None:
                found.add(file)
    if dynamic and path.name == "__init__.py":
        # a registry package importing its modules by computed name: count them all (the safe side)
        found.update(path.parent.glob("*.py"))
        found.update(path.parent.glob("*/__init__.py"))
    return found


def import_closure(module: str, repo: Path = REPO) -> dict[str, str]:
    """Project file (relative posix path) -> the chain of files that imports it, from `module`."""
    entry = module_file(module, repo)
    assert entry is not None, f"{module}: no such project module"
    follow_registry = RUNS_METHODS in {a.name for n in ast.walk(ast.parse(entry.read_text()))
                                       if isinstance(n, ast.ImportFrom) for a in n.names}
    chain = {entry: entry.relative_to(repo).as_posix()}
    todo = [entry]
    while todo:
        path = todo.pop()
        rel = path.relative_to(repo).as_posix()
        skip = REGISTRY[1] if rel == REGISTRY[0] and not follow_registry else API[1] if rel == API[0] else None
        for found in imported_files(path, repo, skip):
            if found not in chain:
                chain[found] = f"{chain[path]} -> {found.relative_to(repo).as_posix()}"
                todo.append(found)
    return {p.relative_to(repo).as_posix(): how for p, how in chain.items()}


def stage_modules(dvc: dict) -> dict[str, str]:
    """stage -> the module its cmd runs (`python -m <module>`; matrix items do not change it)."""
    modules = {}
    for name, stage in dvc["stages"].items():
        found = re.search(r"python -m ([\w.]+)", stage["cmd"])
        assert found, f"dvc.yaml: stage {name!r}: cmd {stage['cmd']!r}: expected `python -m <module>`"
        modules[name] = found.group(1)
    return modules


def code_deps(stage: dict) -> list[str]:
    """The declared deps under the project packages (data deps, templated or not, left out)."""
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
    return [d.rstrip("/") for d in deps if d.split("/")[0] in PACKAGES]


def _covered(file: str, deps: list[str]) -> bool:
    return any(file == d or file.startswith(d + "/") for d in deps)


def missing_deps(dvc: dict, repo: Path = REPO) -> list[str]:
    """One line per (stage, imported file) not under a declared dep; empty when complete."""
    problems = []
    for name, module in stage_modules(dvc).items():
        deps = code_deps(dvc["stages"][name])
        for file, how in sorted(import_closure(module, repo).items()):
            if not _covered(file, deps):
                problems.append(f"dvc.yaml: stage {name!r} imports {file} ({how}) but declares no dep covering it")
    return problems


def unneeded_deps(dvc: dict, repo: Path = REPO) -> list[str]:
    """One line per declared code dep that does not exist or holds no file the stage imports."""
    problems = []
    for name, module in stage_modules(dvc).items():
        closure = import_closure(module, repo)
        for dep in code_deps(dvc["stages"][name]):
            if not (repo / dep).exists():
                problems.append(f"dvc.yaml: stage {name!r}: dep {dep} does not exist")
            elif not any(_covered(file, [dep]) for file in closure):
                problems.append(f"dvc.yaml: stage {name!r}: dep {dep} holds no file its command imports")
    return problems


def load_dvc(repo: Path = REPO) -> dict:
    return yaml.safe_load((repo / "dvc.yaml").read_text())


# ---------------------------------------------------------------------------------------------
# The shipped dvc.yaml


def test_every_stage_declares_every_file_it_imports():
    assert missing_deps(load_dvc()) == []


def test_no_stage_declares_code_it_does_not_import():
    assert unneeded_deps(load_dvc()) == []


def test_the_check_names_the_stage_and_file_of_a_dropped_dep():
    dvc = load_dvc()
    dvc["stages"]["train"]["deps"].remove("baselines")
    problems = sorted(set(missing_deps(dvc)) - set(missing_deps(load_dvc())))   # what the drop did
    assert problems, "dropping baselines from train went unnoticed"
    assert all("stage 'train'" in line for line in problems), problems
    assert any("baselines/mcnet.py" in line for line in problems), problems
    # the chain names how train reaches the baselines (the registry, or frgan.api's model rebuild:
    # which one is found first depends on set order)
    assert any("pipelines/train.py -> " in line and (
        "frgan/methods.py -> baselines/__init__.py" in line or "frgan/api.py -> baselines/" in line)
        for line in problems), problems


def test_the_closure_follows_lazy_imports_and_registries():
    closure = import_closure("pipelines.train")
    assert "frgan/conditions/heatmaps.py" in closure     # imported inside a function of frgan/task.py
    assert "baselines/mcnet.py" in closure                # baselines/__init__ imports it by name
    assert "metrics/pixel.py" not in closure
    evaluate = import_closure("pipelines.evaluate")
    assert "metrics/embedders/dlib_resnet.py" in evaluate  # `from . import dlib_resnet`
    assert not any(f.startswith("baselines/") for f in evaluate), "evaluate never runs a method"
    assert not any(f.startswith("baselines/") or f.startswith("frgan/nets/") for f in import_closure("pipelines.prepare"))


def test_no_stage_module_imports_another():
    """pipelines/ is the DVC graph: what two stages share lives in a package or in a non-stage
    helper (pipelines/_stage.py), never in another stage's module."""
    stages = {module_file(m) for m in stage_modules(load_dvc()).values()}
    crossings = sorted(f"{a.relative_to(REPO)} imports {b.relative_to(REPO)}"
                       for a in stages for b in imported_files(a) if b in stages and b != a)
    assert crossings == []


# The stage layer parses params, calls package code and writes outs; a module past this has
# library code that belongs in a package (frgan/, baselines/, metrics/, reporting/).
STAGE_LAYER_MAX_LINES = 200


def test_the_stage_layer_is_thin():
    lengths = {path.name: len(path.read_text().splitlines()) for path in (REPO / "pipelines").glob("*.py")}
    assert {name: n for name, n in lengths.items() if n > STAGE_LAYER_MAX_LINES} == {}
    upward = sorted(f"{path.relative_to(REPO)} imports {file.relative_to(REPO)}"
                    for package in PACKAGES if package != "pipelines" for path in (REPO / package).rglob("*.py")
                    for file in imported_files(path) if file.is_relative_to(REPO / "pipelines"))
    assert upward == []   # packages never import the stage layer


def test_prepare_depends_on_its_raw_tree_manifest():
    dvc = load_dvc()
    assert "data/raw/${item.dataset}.json" in dvc["stages"]["prepare"]["deps"]
    scan = dvc["stages"]["rawscan"]
    assert scan["always_changed"] is True
    assert scan["matrix"]["dataset"] == dvc["stages"]["prepare"]["matrix"]["dataset"]


# ---------------------------------------------------------------------------------------------
# pipelines/rawscan.py on a fake raw tree


def _scan(root: Path, dataset: str, cwd: Path) -> subprocess.CompletedProcess:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"][dataset]["root"] = str(root)
    (cwd / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return subprocess.run([sys.executable, "-m", "pipelines.rawscan", "--dataset", dataset], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=60)


def _manifest(root: Path, dataset: str, cwd: Path) -> bytes:
    result = _scan(root, dataset, cwd)
    assert result.returncode == 0, result.stderr
    return (cwd / "data" / "raw" / f"{dataset}.json").read_bytes()


def _fake_tree(root: Path) -> Path:
    for rel in ("frames/0001/000001.jpg", "frames/0001/000002.jpg", "labels/0001.mat"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    return root


def test_rawscan_manifest_follows_the_raw_tree(tmp_path):
    root, work = _fake_tree(tmp_path / "penn"), tmp_path / "work"
    work.mkdir()
    first = _manifest(root, "penn", work)
    record = json.loads(first)
    assert record["files"] == 3 and record["generated"] is False
    assert _manifest(root, "penn", work) == first, "an untouched tree must give the same bytes"
    seen = {first}

    def changed(what: str) -> None:
        now = _manifest(root, "penn", work)
        assert now not in seen, f"the manifest missed: {what}"
        seen.add(now)

    (root / "frames/0001/000003.jpg").write_bytes(b"new frame")
    changed("a file added")
    (root / "frames/0001/000002.jpg").unlink()
    changed("a file removed")
    frame = root / "frames/0001/000001.jpg"
    stat = frame.stat()
    frame.write_bytes(b"X" * len(frame.read_bytes()))   # rewritten in place: same size, so the mtime shows it
    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    changed("a file rewritten (same size, new mtime)")
    assert json.loads(_manifest(root, "penn", work))["files"] == 3


def test_rawscan_generated_dataset_is_a_constant_record(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "pipelines.rawscan", "--dataset", "actors-synth"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "data/raw/actors-synth.json").read_text()) == \
        {"dataset": "actors-synth", "generated": True}


def test_rawscan_bad_root_is_one_line_naming_the_key(tmp_path):
    result = _scan(tmp_path / "absent", "mug", tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "datasets.mug.root" in result.stderr, result.stderr
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))   # penn root: null
    result = subprocess.run([sys.executable, "-m", "pipelines.rawscan", "--dataset", "penn"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert result.returncode == 1 and "datasets.penn.root is not set" in result.stderr, result.stderr
    tree = _fake_tree(tmp_path / "penn")
    (tree / "frames" / "0002").symlink_to(tmp_path / "gone")   # a broken link under root
    result = _scan(tree, "penn", tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "frames/0002: No such file or directory" in result.stderr and "datasets.penn.root" in result.stderr


def test_rawscan_imports_neither_torch_nor_mlflow():
    code = ("import sys, pipelines.rawscan; "
            "print(sorted(m for m in ('torch', 'mlflow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# DVC itself, in a tiny copy of the project (code, dvc.yaml, params.yaml; no git, no stage run
# but the scan): placeholder deps and outs are recorded with `dvc commit`, then one input is
# changed and `dvc status` must name the stages it reaches, and only those.


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(root), "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _tiny_dvc_project(root: Path, **params: object) -> Path:
    root.mkdir()
    for name in PACKAGES:
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in params.items():   # dotted keys
        node, (*parents, last) = raw, key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _dvc(root, "init", "--no-scm", "-q")
    return root


def _placeholders(root: Path, *paths: str) -> None:
    """A small file for each path with a suffix, a folder holding one file for the others."""
    for rel in paths:
        path = root / rel
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"placeholder {rel}\n")
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "placeholder.txt").write_text(rel)


def _changed(root: Path, *stages: str) -> set[str]:
    """The stages (of those named) that `dvc status` reports as changed."""
    out = _dvc(root, "status", *stages).stdout
    return {line.rstrip(":") for line in out.splitlines() if line.endswith(":") and not line.startswith(("\t", " "))}


@pytest.mark.slow
def test_a_baseline_edit_marks_train_changed_not_evaluate(tmp_path):
    d, m = "faces-synth", "mcnet"
    root = _tiny_dvc_project(tmp_path / "project", **{"prepare.datasets": [d], "train.methods": [m]})
    _placeholders(root, f"data/prepared/{d}", f"data/conditions/{d}", f"models/{d}/{m}/seed-0",
                  f"checkpoints/{d}/{m}/seed-0", f"reports/metrics/train-{d}-{m}-seed0.json",
                  f"data/generated/{d}/{m}/seed-0", f"reports/metrics/evaluate-{d}-{m}-seed0.json",
                  f"reports/plots/evaluate-{d}-{m}-seed0.csv", f"reports/videos/evaluate-{d}-{m}-seed0.csv")
    train, evaluate = f"train@{d}-{m}-0", f"evaluate@{d}-{m}-0"
    _dvc(root, "commit", "-f", "-q", train, evaluate)
    assert _changed(root, train, evaluate) == set(), "just committed: nothing may read as changed"
    with open(root / "baselines" / "mcnet.py", "a") as handle:
        handle.write("\n# an edit\n")
    assert _changed(root, train, evaluate) == {train}


@pytest.mark.slow
def test_a_changed_raw_tree_marks_prepare_changed(tmp_path):
    tree = _fake_tree(tmp_path / "penn")
    datasets = ["faces-synth", "actors-synth", "penn"]   # the report's datasets stay in the graph
    root = _tiny_dvc_project(tmp_path / "project", **{"prepare.datasets": datasets,
                                                      "datasets.penn.root": str(tree)})
    _placeholders(root, "data/prepared/penn", "reports/figures/prepare-penn.png", "reports/metrics/prepare-penn.json")
    _dvc(root, "repro", "-q", "rawscan@penn")   # the real scan: writes data/raw/penn.json
    _dvc(root, "commit", "-f", "-q", "prepare@penn")
    assert _changed(root, "prepare@penn") == set()
    _dvc(root, "repro", "-q", "rawscan@penn")   # nothing changed: the manifest keeps its bytes
    assert _changed(root, "prepare@penn") == set()
    (tree / "labels" / "0002.mat").write_bytes(b"a new video's labels")
    _dvc(root, "repro", "-q", "rawscan@penn")
    assert _changed(root, "prepare@penn") == {"prepare@penn"}
