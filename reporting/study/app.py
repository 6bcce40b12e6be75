"""The rating page as a Flask app: the page (page/), the study's GIFs and a two-call JSON API.

    GET  /                      page/index.html; /app.css, /app.js: page/page.css, page/page.js
    GET  /video/<name>.gif      one of the study's own GIFs, looked up by exact name
    GET  /api/next?rater=R      R's next question: {total, answered, done, question, left, right}
    POST /api/answer            {rater, question, choice: left|right} -> 201 {answered, total}

Everything else is 404; there is no /static route. server.py puts the WSGI guard in front and
listens; store.py keeps the answers.
"""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from reporting.study import store
from reporting.study.folder import DB_FILE, GIFS_DIR, open_study

RATER_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")
QUESTION_RE = re.compile(r"q[0-9]{1,6}")


def page_files(px: int) -> dict[str, str]:
    """The page's three files with the GIFs' display size filled in."""
    folder = resources.files("reporting.study").joinpath("page")
    text = {name: folder.joinpath(name).read_text(encoding="utf-8")
            for name in ("index.html", "page.css", "page.js")}
    text["index.html"] = text["index.html"].replace("{px}", str(px))
    text["page.css"] = text["page.css"].replace("{px}", str(px)).replace("{width}", str(2 * px + 200))
    return text


def create_app(folder: Path, db_path: Optional[Path] = None):
    """The Flask app of one study folder (creates or checks its answer database)."""
    from flask import Flask, Response, abort, jsonify, request, send_file
    from werkzeug.exceptions import HTTPException

    study = open_study(folder)
    db_path = Path(db_path or Path(folder) / DB_FILE)
    store.init_db(db_path, study.study_id)
    questions = study.questions
    video_files = {name: (Path(folder) / GIFS_DIR / name).resolve() for name in study.record["videos"]}
    page = page_files(int(study.record.get("display_px", 256)))

    app = Flask(__name__, static_folder=None)   # no /static route: only the routes below exist
    app.config["MAX_CONTENT_LENGTH"] = 4096       # an answer is ~100 bytes

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            response = jsonify(error=exc.description or exc.name)
            response.status_code = exc.code or 500
            return response
        return Response(f"{exc.code} {exc.name}\n", status=exc.code, mimetype="text/plain")

    @app.after_request
    def _headers(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'self'"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.path.startswith("/api/") or request.path == "/":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def _page():
        return Response(page["index.html"], mimetype="text/html")

    @app.get("/app.js")
    def _script():
        return Response(page["page.js"], mimetype="text/javascript")

    @app.get("/app.css")
    def _css():
        return Response(page["page.css"], mimetype="text/css")

    @app.get("/video/<name>")
    def _video(name: str):
        path = video_files.get(name)   # never a path built from the request
        if path is None:
            abort(404)
        return send_file(path, mimetype="image/gif", max_age=3600)

    def rater_arg(value) -> str:
        if not isinstance(value, str) or not RATER_RE.fullmatch(value):
            abort(400, "rater: expected 1-40 letters, digits, '-' or '_'")
        return value

    @app.get("/api/next")
    def _next():
        rater = rater_arg(request.args.get("rater"))
        order = study.order_for(rater)
        todo = store.show_next(db_path, rater, order)
        body: dict[str, Any] = {"total": len(order), "answered": len(order) - len(todo), "done": not todo}
        if todo:
            left, right = study.sides(rater, todo[0])
            body.update(question=todo[0], left=f"/video/{left}", right=f"/video/{right}")
        return jsonify(body)

    @app.post("/api/answer")
    def _answer():
        if not request.is_json:
            abort(415, "expected Content-Type: application/json")
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or set(data) != {"rater", "question", "choice"}:
            abort(400, "expected a JSON object with exactly: rater, question, choice")
        rater = rater_arg(data["rater"])
        question, choice = data["question"], data["choice"]
        if choice not in ("left", "right"):
            abort(400, "choice: expected 'left' or 'right'")
        if not isinstance(question, str) or not QUESTION_RE.fullmatch(question):
            abort(400, "question: expected a question id such as 'q001'")
        if question not in questions:
            abort(404, f"question {question}: no such question in this study")
        left, right = study.sides(rater, question)
        chosen = left if choice == "left" else right
        try:
            answered = store.record_answer(db_path, rater, question, (left, right),
                                           (study.method_of(left), study.method_of(right)),
                                           choice, study.method_of(chosen))
        except store.Conflict as exc:   # the page moves on from a 409 (answered in another tab)
            abort(409, str(exc))
        return jsonify(answered=answered, total=len(questions)), 201

    return app
