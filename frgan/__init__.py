"""FRGAN-Repro: the method (G_M, G_R, D_I, D_V) and everything every method shares."""
