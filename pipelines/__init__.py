"""One thin module per DVC stage: parse params, call the packages, write outs."""
