"""One thin module per DVC stage: parse params, call the packages, write outs."""
import os

# Progress bars redraw at most once a second: readable in `dvc repro` logs and CI output.
os.environ.setdefault("TQDM_MININTERVAL", "1")
