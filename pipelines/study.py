"""study: the paper's user study (Table 2) as a local web page, answers in SQLite, and its tally.

    python -m pipelines.study build                 # draw the questions, encode GIFs -> data/study/
    python -m pipelines.study serve [--host H] [--port P]   # the rating page on http://127.0.0.1:8765/
    python -m pipelines.study tally                 # answers -> reports/study/answers.csv, Table 2

The command line of reporting/study/ (the draw, the page, the answer store, the tally: see its
docstring); not a DVC stage. Errors: a missing or malformed generated folder or study folder
stops with one line naming the file and what was expected (exit 1); a params.yaml that breaks
the schema exits 2, as every stage.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from frgan.config import ParamsError, Params, load_params
from frgan.data.errors import DatasetError
from frgan.tracking import TrackingError
from pipelines import _stage
from reporting import study
from reporting.study.server import is_loopback
from reporting.study.table2 import read_answers


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):   # one line, exit 2 (argparse prints usage too by default)
        _stage._fail(f"{self.prog}: {message}", 2)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m pipelines.study", description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,serve,tally}",
                           parser_class=_Parser)
    folder = {"type": Path, "help": "study folder (default: params study.folder)"}
    db = {"type": Path, "help": "answers database (default: <folder>/answers.sqlite)"}
    b = sub.add_parser("build", help="draw the questions and write the study folder")
    b.add_argument("--folder", **folder)
    b.add_argument("--force", action="store_true", help="replace a study folder that holds answers")
    s = sub.add_parser("serve", help="run the rating page")
    s.add_argument("--folder", **folder)
    s.add_argument("--db", **db)
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    s.add_argument("--port", type=int, default=study.DEFAULT_PORT, help=f"port (default {study.DEFAULT_PORT})")
    t = sub.add_parser("tally", help="export the answers and print Table 2")
    t.add_argument("--folder", **folder)
    t.add_argument("--db", **db)
    t.add_argument("--out", type=Path, default=study.ANSWERS_CSV, help=f"answers CSV (default: {study.ANSWERS_CSV})")
    return p


def main(params: Params, args: argparse.Namespace) -> None:
    folder = Path(args.folder or params.study.folder)
    if args.command == "build":
        known = _stage.registered_methods()
        for i, name in enumerate(params.study.competitors):
            if name not in known:
                raise ParamsError(f"{args.params}: study.competitors.{i} = {name!r}: expected one of {sorted(known)}")
        record = study.build(params, folder, force=args.force)
        print(f"study build: {len(record['questions'])} questions ({record['planned']['questions']} planned), "
              f"{len(record['videos'])} GIFs, seed {record['seed']}, study {record['study_id']} -> {folder}")
        for line in record["shortfall"]:
            print(f"  shortfall: {line}")
        if not record["shortfall"]:
            print("  no shortfall: the paper's scheme was met")
    elif args.command == "serve":
        server = study.make_server(folder, args.host, args.port, args.db)
        shown_host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"study serve: http://{shown_host}:{server.server_port}/ (folder {folder}); Ctrl+C stops; "
              "answers are saved as they are given", flush=True)
        if not is_loopback(args.host):
            print(f"  warning: bound to {args.host}: other machines on the network can reach the page",
                  flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    elif args.command == "tally":
        text = study.tally(params, folder, args.db, args.out)
        rows = read_answers(args.out)
        print(text)
        print(f"{len(rows)} answers -> {args.out}; "
              + study.coverage(study.open_study(folder), rows.to_dict("records"), params.study.raters_per_question))


def cli(argv: Optional[list[str]] = None) -> int:
    """Run the command; 0 on success, else one line on stderr and exit 2 (params) or 1 (inputs)."""
    args = parser().parse_args(argv)
    try:
        params = load_params(args.params)
    except ParamsError as exc:
        _stage._fail(str(exc), 2)
    try:
        main(params, args)
    except ParamsError as exc:
        _stage._fail(str(exc), 2)
    except (DatasetError, TrackingError) as exc:
        _stage._fail(str(exc), 1)
    except OSError as exc:   # e.g. a study folder that cannot be written
        _stage._fail(f"{getattr(exc, 'filename', None) or args.command}: {exc.strerror or exc}", 1)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
