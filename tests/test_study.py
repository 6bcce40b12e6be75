"""The user study of Table 2 (reporting/study/; its command line, pipelines/study.py): the paper's
draw, the study folder, the server's answers to good and bad requests, path traversal, a
concurrent load, the tally and its errors.

Inputs are small fake generated videos in tmp_path, never the repository's data/ folder. The
browser test is tests/test_study_browser.py.
"""
from __future__ import annotations

import ast
import collections
import http.client
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from frgan.config import load_params
from frgan.data.errors import DatasetError
from metrics.stats import wilson_interval
from pipelines import study as study_cli
from reporting import study
from tests.conftest import REPO, run_module

EXPRESSIONS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
COMPETITORS = ["mcnet", "villegas17", "mocogan"]
METHODS = ["frgan", *COMPETITORS]


# ---------------------------------------------------------------------------------------------
# Fake inputs: the generate stage's layout (videos.u8, index.csv, meta.json) per method.

def make_generated(root: Path, per_expression: int, dataset: str = "faces-synth",
                   methods=METHODS, frames: int = 6, size: int = 16, seed: int = 0) -> None:
    """data/generated/<dataset>/<method>/seed-<seed>/ under root (the study reads the first of
    train.seeds, 0): per_expression videos per expression, each a small square moving across a
    background whose colour tells the method (for screenshots)."""
    colours = {"frgan": (200, 120, 90), "mcnet": (90, 140, 200), "villegas17": (110, 190, 110),
               "mocogan": (190, 170, 80)}
    for method in methods:
        folder = root / "data" / "generated" / dataset / method / f"seed-{seed}"
        folder.mkdir(parents=True)
        rows, videos = [], []
        for e, expression in enumerate(EXPRESSIONS):
            for s in range(per_expression):
                video = np.empty((frames, size, size, 3), np.uint8)
                video[:] = colours.get(method, (128, 128, 128))
                for t in range(frames):
                    x = (t * 2 + s) % (size - 4)
                    video[t, 4 + e % 3: 8 + e % 3, x:x + 4] = 255
                videos.append(video)
                rows.append({"item": len(rows), "clip_id": f"s{s:03d}_{expression}_t0",
                             "subject": f"s{s:03d}", "label": expression})
        np.stack(videos).tofile(folder / "videos.u8")
        pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
        (folder / "meta.json").write_text(json.dumps(
            {"dataset": dataset, "method": method, "seed": seed, "shape": [len(videos), frames, size, size, 3]}))


def study_params(tmp_path: Path, **study):
    """The repository's params with a study section for tmp_path; also written as params.yaml."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw.setdefault("study", {}).update({"folder": str(tmp_path / "study"), **study})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_params(path)


class Server:
    """The study server on 127.0.0.1 (an OS-chosen port) in a background thread."""

    def __init__(self, folder: Path, db_path: Path | None = None):
        self.server = study.make_server(folder, "127.0.0.1", 0, db_path)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=30)

    def request(self, method: str, target: str, body=None, headers=None):
        """One raw HTTP request (http.client sends the target exactly as given)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list, str, int)) and "Content-Type" not in hdrs:
                hdrs["Content-Type"] = "application/json"
            conn.request(method, target, body=data, headers=hdrs)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def next(self, rater: str) -> dict:
        status, body = self.request("GET", f"/api/next?rater={rater}")
        assert status == 200, body
        return json.loads(body)

    def answer(self, rater: str, question: str, choice: str) -> tuple[int, dict]:
        status, body = self.request("POST", "/api/answer",
                                    {"rater": rater, "question": question, "choice": choice})
        return status, json.loads(body)


def db_dump(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return list(conn.iterdump())


@pytest.fixture()
def built(tmp_path, monkeypatch):
    """A study drawn by the paper's scheme (54 questions) from 12 fake videos per expression."""
    monkeypatch.chdir(tmp_path)
    make_generated(tmp_path, per_expression=12)
    params = study_params(tmp_path)
    record = study.build(params)
    return params, Path(params.study.folder), record


# ---------------------------------------------------------------------------------------------
# The draw.

def _labels(per_expression: int) -> dict[str, list[str]]:
    return {m: [e for e in EXPRESSIONS for _ in range(per_expression)] for m in METHODS}


def test_draw_counts_are_the_papers():
    draw = study.draw_questions(_labels(12), COMPETITORS, 10, 54, seed=0)
    assert draw.shortfall == []
    assert len(draw.questions) == 54
    for method in METHODS:
        for e in EXPRESSIONS:
            assert len(draw.selected[method][e]) == 10          # 10 videos per expression and method
    per_cell = collections.Counter((q["competitor"], q["expression"]) for q in draw.questions)
    assert set(per_cell) == {(c, e) for c in COMPETITORS for e in EXPRESSIONS}
    assert set(per_cell.values()) == {3}                          # 54 = 3 competitors x 6 x 3
    assert collections.Counter(q["competitor"] for q in draw.questions) == {c: 18 for c in COMPETITORS}
    labels = _labels(12)
    frgan_used = [q["frgan_item"] for q in draw.questions]
    assert len(set(frgan_used)) == 54                             # each FRGAN video in one question
    for c in COMPETITORS:
        used = [q["competitor_item"] for q in draw.questions if q["competitor"] == c]
        assert len(set(used)) == len(used) == 18
    for q in draw.questions:                                      # pairs share the expression, drawn from the selection
        assert labels["frgan"][q["frgan_item"]] == q["expression"] == labels[q["competitor"]][q["competitor_item"]]
        assert q["frgan_item"] in draw.selected["frgan"][q["expression"]]
        assert q["competitor_item"] in draw.selected[q["competitor"]][q["expression"]]
    assert [q["id"] for q in draw.questions] == [f"q{k:03d}" for k in range(1, 55)]


def test_draw_is_reproducible_under_its_seed():
    a = study.draw_questions(_labels(12), COMPETITORS, 10, 54, seed=7)
    b = study.draw_questions(_labels(12), COMPETITORS, 10, 54, seed=7)
    c = study.draw_questions(_labels(12), COMPETITORS, 10, 54, seed=8)
    assert a == b
    assert a.questions != c.questions and a.selected != c.selected


def test_draw_spreads_a_remainder_and_records_a_shortfall():
    draw = study.draw_questions(_labels(12), COMPETITORS, 10, 20, seed=0)   # 20 over 18 cells
    per_cell = collections.Counter((q["competitor"], q["expression"]) for q in draw.questions)
    assert len(draw.questions) == 20 and sorted(per_cell.values()) == [1] * 16 + [2] * 2
    # The smoke profile: 3 test videos per expression. Each FRGAN video still appears once.
    small = study.draw_questions(_labels(3), COMPETITORS, 10, 54, seed=0)
    assert len(small.questions) == 18
    assert collections.Counter((q["competitor"], q["expression"]) for q in small.questions) == \
        {(c, e): 1 for c in COMPETITORS for e in EXPRESSIONS}
    assert small.shortfall[0] == "questions: 18 of the 54 planned (each video is shown in at most one question)"
    assert "frgan: 3 videos of 10 wanted per expression" in small.shortfall
    assert "questions per competitor and expression: 1 of 3 planned" in small.shortfall
    assert len(small.shortfall) == 1 + len(METHODS) + 1
    # Uneven: one competitor lacks videos of one expression.
    labels = _labels(12)
    labels["mocogan"] = [e for e in labels["mocogan"] if e != "fear"] + ["fear"]
    uneven = study.draw_questions(labels, COMPETITORS, 10, 54, seed=0)
    assert uneven.shortfall == ["questions: 52 of the 54 planned (each video is shown in at most one question)",
                                "mocogan: fear 1 videos of 10 wanted",
                                "questions short: frgan vs mocogan/fear 1 of 3"]


# ---------------------------------------------------------------------------------------------
# build: the study folder.

def test_build_writes_looping_gifs_and_the_draw(built):
    params, folder, record = built
    saved = json.loads((folder / "questions.json").read_text())
    assert saved == record and len(saved["questions"]) == 54 and saved["shortfall"] == []
    assert saved["train_seed"] == 0   # the first of train.seeds: one training run per method
    assert saved["study_id"] == study.study_id_of(saved)
    names = sorted(p.name for p in (folder / "videos").iterdir())
    assert names == sorted(record["videos"]) and len(names) == 108   # every video in one question
    with Image.open(folder / "videos" / names[0]) as gif:
        assert gif.format == "GIF" and gif.n_frames == 6 and gif.info.get("loop") == 0
    # The methods are not in the names the page uses.
    assert not any(m in name for name in names for m in METHODS)
    # Rebuilding under the same seed gives the same study.
    again = study.build(params, folder)
    assert again["study_id"] == record["study_id"]


def test_build_cli_prints_the_shortfall(tmp_path):
    make_generated(tmp_path, per_expression=3)
    study_params(tmp_path, folder="study")
    result = run_module("pipelines.study", "build", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "study build: 18 questions (54 planned)" in result.stdout
    assert "shortfall: questions: 18 of the 54 planned" in result.stdout
    assert "shortfall: mocogan: 3 videos of 10 wanted per expression" in result.stdout
    assert len(json.loads((tmp_path / "study" / "questions.json").read_text())["questions"]) == 18


def test_build_shows_the_first_training_seeds_videos(tmp_path, monkeypatch):
    """One training run per method: the first of train.seeds, read from its seed-<s> folder."""
    monkeypatch.chdir(tmp_path)
    make_generated(tmp_path, per_expression=3, seed=3)
    params = study_params(tmp_path)
    params = params.model_copy(update={"train": params.train.model_copy(update={"seeds": [3, 0]})})
    record = study.build(params)
    assert record["train_seed"] == 3 and len(record["questions"]) == 18
    assert study.load_generated("faces-synth", "frgan", 3).folder == Path("data/generated/faces-synth/frgan/seed-3")
    with pytest.raises(DatasetError, match=re.escape(
            "data/generated/faces-synth/frgan/seed-0: generated videos not found (expected the output of "
            "generate@faces-synth-frgan-0 (videos.u8, index.csv, meta.json))")):
        study.load_generated("faces-synth", "frgan", 0)


def test_bad_input_exits_with_one_line(tmp_path):
    make_generated(tmp_path, per_expression=2, methods=["frgan", "mcnet", "villegas17"])  # no mocogan
    study_params(tmp_path, folder="study")
    cases = [
        (["build"], 1, "data/generated/faces-synth/mocogan/seed-0: generated videos not found (expected the "
                       "output of generate@faces-synth-mocogan-0"),
        (["serve", "--port", "0"], 1, "study: study folder not found"),
        (["tally"], 1, "study: study folder not found"),
        (["publish"], 2, "invalid choice: 'publish'"),
        ([], 2, "the following arguments are required"),
    ]
    for args, code, message in cases:
        result = run_module("pipelines.study", *args, cwd=tmp_path, timeout=120)
        assert result.returncode == code, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, lines)
    assert not (tmp_path / "study").exists()


def test_build_refuses_to_drop_answers(built):
    params, folder, record = built
    with Server(folder) as server:
        question = server.next("ann")["question"]
        assert server.answer("ann", question, "left")[0] == 201
    with pytest.raises(DatasetError, match=r"answers.sqlite: holds 1 answers .* --force"):
        study.build(params)
    assert study.count_answers(folder / "answers.sqlite") == 1


def test_a_damaged_study_folder_is_named(built):
    params, folder, record = built
    (folder / "questions.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"questions.json: expected the JSON written by"):
        study.open_study(folder)


# ---------------------------------------------------------------------------------------------
# serve: answers, stop and resume, bad requests.

def test_answers_are_recorded_with_sides_rater_and_time(built):
    params, folder, record = built
    s = study.open_study(folder)
    with Server(folder) as server:
        first = server.next("ann")
        assert first["total"] == 54 and first["answered"] == 0 and not first["done"]
        q = first["question"]
        left, right = s.sides("ann", q)
        assert (first["left"], first["right"]) == (f"/video/{left}", f"/video/{right}")
        assert server.next("ann")["question"] == q                # a reload shows the same question
        assert server.answer("ann", q, "right") == (201, {"answered": 1, "total": 54})
        status, gif = server.request("GET", first["left"])
        assert status == 200 and gif.startswith(b"GIF89a")
        second = server.next("ann")
        assert second["answered"] == 1 and second["question"] != q
    with sqlite3.connect(folder / "answers.sqlite") as conn:
        rows = conn.execute("SELECT rater, question, left_method, right_method, chosen_side, "
                            "chosen_method, seconds FROM answers").fetchall()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(rows) == 1
    rater, question, lm, rm, side, chosen, seconds = rows[0]
    assert (rater, question, side) == ("ann", q, "right")
    assert (lm, rm) == (s.method_of(left), s.method_of(right)) and chosen == rm
    assert {lm, rm} == {"frgan", s.questions[q]["competitor"]} and seconds >= 0


def test_the_page_is_served_from_its_files_with_the_display_size(built):
    """reporting/study/page/ (package data): the GIFs' size filled in, no placeholder left."""
    params, folder, record = built
    px = record["display_px"]
    with Server(folder) as server:
        pages = {target: server.request("GET", target) for target in ("/", "/app.css", "/app.js")}
    assert all(status == 200 for status, _ in pages.values())
    html, css, js = (pages[t][1].decode() for t in ("/", "/app.css", "/app.js"))
    assert f'width="{px}" height="{px}"' in html and '<script src="/app.js">' in html
    assert f"max-width: {2 * px + 200}px" in css and f"width: {px}px" in css
    assert '"use strict";' in js and "/api/answer" in js
    assert not any("{px}" in text or "{width}" in text for text in (html, css, js))


def test_left_right_and_order_are_randomised_per_rater(built):
    params, folder, record = built
    s = study.open_study(folder)
    raters = [f"r{k}" for k in range(6)]
    frgan_left = [s.method_of(s.sides(r, q)[0]) == "frgan" for r in raters for q in s.questions]
    assert 0.35 < sum(frgan_left) / len(frgan_left) < 0.65          # 324 fair coins
    assert s.order_for("r0") != s.order_for("r1") and sorted(s.order_for("r0")) == sorted(s.questions)
    assert s.order_for("r0") == study.open_study(folder).order_for("r0")


def test_a_rater_stops_and_resumes(built):
    params, folder, record = built
    with Server(folder) as server:
        for _ in range(5):
            q = server.next("ann")["question"]
            assert server.answer("ann", q, "left")[0] == 201
    with Server(folder) as server:                                   # a new server on the same folder
        resumed = server.next("ann")
        assert resumed["answered"] == 5 and resumed["total"] == 54
        assert server.next("bob")["answered"] == 0


def test_bad_requests_get_4xx_and_change_nothing(built):
    params, folder, record = built
    db = folder / "answers.sqlite"
    with Server(folder) as server:
        q = server.next("ann")["question"]
        assert server.answer("ann", q, "left")[0] == 201
        server.next("ann")                                           # ann is now shown a second question
        before = db_dump(db)
        ok = {"rater": "ann", "question": q, "choice": "left"}
        cases = [
            ("repeated answer", {**ok}, 409),
            ("repeated answer, other side", {**ok, "choice": "right"}, 409),
            ("unknown question", {**ok, "question": "q999"}, 404),
            ("question never shown to this rater", {**ok, "rater": "zed"}, 409),
            ("bad question id", {**ok, "question": "../q001"}, 400),
            ("bad choice", {**ok, "choice": "both"}, 400),
            ("choice not a string", {**ok, "choice": 1}, 400),
            ("missing key", {"rater": "ann", "question": q}, 400),
            ("extra key", {**ok, "seconds": 0.1}, 400),
            ("bad rater", {**ok, "rater": "ann'; DROP TABLE answers; --"}, 400),
            ("empty rater", {**ok, "rater": ""}, 400),
            ("not an object", ["ann", q, "left"], 400),
        ]
        for name, body, code in cases:
            status, reply = server.request("POST", "/api/answer", body)
            assert status == code, (name, status, reply)
            assert "error" in json.loads(reply), name
        raw_cases = [
            ("malformed JSON", b'{"rater": "ann", ', {"Content-Type": "application/json"}, 400),
            ("not JSON", b"rater=ann&question=q001&choice=left",
             {"Content-Type": "application/x-www-form-urlencoded"}, 415),
            ("too large", b'{"rater": "' + b"a" * 10_000 + b'"}', {"Content-Type": "application/json"}, 413),
        ]
        for name, body, headers, code in raw_cases:
            status, _ = server.request("POST", "/api/answer", body, headers)
            assert status == code, (name, status)
        for target, code in [("/api/next", 400), ("/api/next?rater=", 400), ("/api/next?rater=a%20b", 400),
                             ("/api/answer", 405), ("/api/nope", 404)]:
            status, _ = server.request("GET", target)
            assert status == code, (target, status)
        status, _ = server.request("GET", "/", headers={"Host": "evil.example:80"})
        assert status == 400                                        # DNS rebinding: foreign Host header
        assert db_dump(db) == before
    # The first answer is still there, once.
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*), MIN(chosen_side) FROM answers").fetchone() == (1, "left")


def test_path_traversal_reads_nothing_outside_the_study(built, tmp_path):
    params, folder, record = built
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CANARY")
    video = next(iter(record["videos"]))
    targets = [
        "/video/../../secret.txt", "/video/..%2f..%2fsecret.txt", "/video/%2e%2e/%2e%2e/secret.txt",
        "/video/%2E%2E%2F%2E%2E%2Fsecret.txt", "/%2e%2e/secret.txt", "/../secret.txt",
        "/video/%252e%252e%252fsecret.txt", "/video/..%5c..%5csecret.txt", "/video/..\\..\\secret.txt",
        f"/video/{tmp_path}/secret.txt", f"/video/{str(tmp_path).replace('/', '%2f')}%2fsecret.txt",
        "//etc/passwd", "/video//etc/passwd", "/etc/passwd", "/video/%2fetc%2fpasswd",
        f"/video/../videos/{video}", f"/videos/{video}", "/questions.json", "/answers.sqlite",
        "/video/questions.json", "/video/..%2fquestions.json", "/static/app.js",
        f"http://127.0.0.1/../{secret}", "/video/%00", "/app.js/..",
    ]
    opened: list[str] = []
    recording = threading.Event()

    def hook(event, args):
        if recording.is_set() and event == "open" and args and isinstance(args[0], (str, bytes)):
            opened.append(str(args[0]))
    sys.addaudithook(hook)   # cannot be removed: it records only while `recording` is set
    with Server(folder) as server:
        recording.set()
        try:
            for target in targets:
                status, body = server.request("GET", target)
                assert status == 404, (target, status)
                assert b"CANARY" not in body and b"root:" not in body, target
        finally:
            recording.clear()
        # The real video still works.
        assert server.request("GET", f"/video/{video}")[0] == 200
    outside = [p for p in opened if "secret" in p or "passwd" in p or p.endswith(("questions.json", ".sqlite"))]
    assert outside == []


def test_server_binds_loopback_unless_told_otherwise(built, tmp_path):
    params, folder, record = built
    assert study_cli.parser().parse_args(["serve"]).host == "127.0.0.1"
    server = study.make_server(folder, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.study", "--params", str(tmp_path / "params.yaml"),
                             "serve", "--port", "0"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        line = proc.stdout.readline()
        assert re.match(r"study serve: http://127\.0\.0\.1:\d+/ ", line), (line, proc.stderr.read() if proc.poll() is not None else "")
        port = int(re.search(r":(\d+)/", line).group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
        taken = run_module("pipelines.study", "--params", str(tmp_path / "params.yaml"), "serve",
                           "--port", str(port), cwd=tmp_path, timeout=120)
        assert taken.returncode == 1
        assert re.fullmatch(rf"error: --host 127\.0\.0\.1 --port {port}: cannot listen there \(.*\); "
                            r"pick another --port\n", taken.stderr), taken.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_sql_is_only_parameterised():
    """Every execute() in reporting/study/ gets a constant SQL string; values go as parameters."""
    calls = [n for path in sorted((REPO / "reporting" / "study").glob("*.py"))
             for n in ast.walk(ast.parse(path.read_text()))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr in ("execute", "executescript", "executemany")]
    assert len(calls) >= 10

    def constant(node) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return True
        if isinstance(node, ast.Name) and node.id == "SCHEMA":
            return True
        return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and \
            constant(node.left) and constant(node.right)
    bad = [ast.unparse(c) for c in calls if not constant(c.args[0])]
    assert bad == []


def test_concurrent_raters_lose_and_duplicate_nothing(built):
    """20 raters at once, each answering all 54 questions (and re-sending one answer)."""
    params, folder, record = built
    raters = [f"rater{k:02d}" for k in range(20)]
    errors: list[str] = []
    rejected = collections.Counter()
    expected: dict[tuple[str, str], str] = {}
    lock = threading.Lock()

    def rate(rater: str) -> None:
        rng = random.Random(rater)
        try:
            first = None
            while True:
                nxt = server.next(rater)
                if nxt["done"]:
                    break
                choice = rng.choice(["left", "right"])
                status, body = server.answer(rater, nxt["question"], choice)
                if status != 201:
                    errors.append(f"{rater} {nxt['question']}: {status} {body}")
                    return
                first = first or (nxt["question"], choice)
                with lock:
                    expected[(rater, nxt["question"])] = choice
            status, _ = server.answer(rater, first[0], first[1])   # a double submit
            with lock:
                rejected[status] += 1
        except Exception as exc:   # reported below, never swallowed
            errors.append(f"{rater}: {type(exc).__name__}: {exc}")

    with Server(folder) as server:
        threads = [threading.Thread(target=rate, args=(r,)) for r in raters]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)   # generous: a hang fails the test, it never times the server
        assert not any(t.is_alive() for t in threads), "raters still running after 300 s"
    assert errors == []
    assert rejected == {409: 20}
    with sqlite3.connect(folder / "answers.sqlite") as conn:
        rows = conn.execute("SELECT rater, question, chosen_side FROM answers").fetchall()
    assert len(rows) == 20 * 54 == len(set((r, q) for r, q, _ in rows))
    assert {(r, q): side for r, q, side in rows} == expected


# ---------------------------------------------------------------------------------------------
# tally: the CSV, Table 2, MLflow.

def _answers_csv(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    """rows: (rater, question, competitor, chosen_method)."""
    study.write_answers_csv([{"dataset": "faces-synth", "study_id": "x", "rater": r, "question": q,
                              "expression": "anger", "competitor": c, "left_method": "frgan",
                              "right_method": c, "chosen_method": m, "seconds": 1.0, "answered_at": "t"}
                             for r, q, c, m in rows], path)
    return path


def test_table2_from_answers(tmp_path):
    rows = [("a", f"q{k:03d}", "mcnet", "frgan" if k < 8 else "mcnet") for k in range(10)]
    rows += [("b", f"q{k:03d}", "mocogan", "frgan" if k % 2 else "mocogan") for k in range(4)]
    path = _answers_csv(tmp_path / "answers.csv", rows)
    frame = study.table2_frame(path).set_index("competitor")
    assert list(frame.index) == ["mcnet", "villegas17", "mocogan"]
    assert frame.loc["mcnet", ["answers", "frgan_chosen", "ours_pct", "competitor_pct"]].tolist() == [10, 8, 80.0, 20.0]
    low, high = wilson_interval(8, 10)
    assert frame.loc["mcnet", "ours_low_pct"] == pytest.approx(100 * low)
    assert frame.loc["mcnet", "ours_high_pct"] == pytest.approx(100 * high)
    assert frame.loc["mocogan", "ours_pct"] == 50.0 and frame.loc["mocogan", "raters"] == 1
    assert frame.loc["villegas17", "answers"] == 0 and np.isnan(frame.loc["villegas17", "ours_pct"])
    published = {(2, "Ours / MCNet [38]", "Ours (%)"): 84.2, (2, "Ours / MCNet [38]", "Competitor (%)"): 15.8}
    text = study.table2_markdown(path, published)
    assert "| Ours / MCNet [38] | 80.0 | 20.0 | " in text and "| 10 | 84.2 / 15.8 |" in text
    assert "| Ours / Villegas et al. [39] | no answers yet | no answers yet | - | 0 | - |" in text
    assert "faces-synth (synthetic stand-in for MUG)" in text


def test_table2_without_answers_shows_no_number(tmp_path):
    header_only = _answers_csv(tmp_path / "empty.csv", [])
    for path in (tmp_path / "absent.csv", header_only):
        text = study.table2_markdown(path, {(2, "Ours / MCNet [38]", "Ours (%)"): 84.2})
        assert "no answers yet" in text.lower()
        assert not re.search(r"\d+\.\d|%\s*\|", text) and "84.2" not in text, text
    assert (study.table2_frame(header_only)["answers"] == 0).all()


def test_answers_csv_with_a_foreign_choice_is_refused(tmp_path):
    path = _answers_csv(tmp_path / "answers.csv", [("a", "q001", "mcnet", "mocogan")])
    with pytest.raises(DatasetError, match=r"row 2: chosen_method must be frgan or the row's competitor"):
        study.table2_frame(path)


def test_tally_exports_answers_and_logs_to_mlflow(built, tmp_path):
    params, folder, record = built
    # Before anyone answered: the command says so, and exports a CSV with no rows.
    result = run_module("pipelines.study", "--params", str(tmp_path / "params.yaml"), "tally",
                        cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "No answers yet" in result.stdout and "0 answers -> reports/study/answers.csv" in result.stdout
    out = tmp_path / "reports" / "study" / "answers.csv"
    assert pd.read_csv(out).empty
    with Server(folder) as server:
        for rater in ("ann", "bob"):
            for _ in range(4):
                q = server.next(rater)["question"]
                assert server.answer(rater, q, "left")[0] == 201
    text = study.tally(params, folder, out=out)
    answers = pd.read_csv(out)
    assert len(answers) == 8 and list(answers.columns) == study.ANSWER_COLUMNS
    with sqlite3.connect(folder / "answers.sqlite") as conn:
        db = conn.execute("SELECT rater, question, chosen_method FROM answers ORDER BY id").fetchall()
    assert [tuple(r) for r in answers[["rater", "question", "chosen_method"]].itertuples(index=False)] == db
    assert json.loads((out.parent / "study.json").read_text())["study_id"] == record["study_id"]
    asked = answers["question"].nunique()
    assert f"8 answers from 2 raters on {asked} question{'s' if asked > 1 else ''}." in text
    import mlflow
    runs = mlflow.search_runs(experiment_names=["FRGAN-Repro"], filter_string="tags.stage = 'study-tally'",
                              order_by=["attributes.start_time DESC"])
    assert len(runs) == 2 and runs.iloc[0]["metrics.answers"] == 8 and runs.iloc[1]["metrics.answers"] == 0
    frame = study.table2_frame(out)
    for r in frame.itertuples():
        if r.answers:
            assert runs.iloc[0][f"metrics.table2_{r.competitor}_ours_pct"] == pytest.approx(r.ours_pct)
