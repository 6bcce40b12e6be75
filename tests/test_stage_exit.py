"""How a stage ends: run as a program it exits 0 without the interpreter's teardown
(frgan.io.exit_without_teardown), with what it printed and logged flushed; called from
Python it returns to its caller."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

# A stage whose main leaves output in the buffers: text without a newline on stdout and stderr,
# and a log record through a handler that writes only when flushed (logging.shutdown does).
PROGRAM = """
import logging, logging.handlers, os, sys
from pipelines import _stage

def main(params, args):
    target = logging.FileHandler(os.environ["STAGE_LOG"])
    buffered = logging.handlers.MemoryHandler(capacity=100, flushLevel=logging.CRITICAL, target=target)
    log = logging.getLogger("stage")
    log.addHandler(buffered)
    log.warning("logged")
    print("printed", end="")
    sys.stderr.write("warned")

_stage.run(main, _stage.parser("a stage"), registry=False)
print(" and after the stage")   # never runs: the stage exits
"""


def test_a_stage_run_as_a_program_exits_zero_with_its_output_flushed(tmp_path):
    log = tmp_path / "stage.log"
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "STAGE_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "printed" and result.stderr.endswith("warned")
    assert log.read_text() == "logged\n"


def test_a_stage_called_from_python_returns(monkeypatch):
    from pipelines import _stage
    ran = []
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["a-stage"])
    _stage.run(lambda params, args: ran.append(params.profile), _stage.parser("a stage"), registry=False)
    assert ran == ["smoke"]
