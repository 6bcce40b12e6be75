"""FRGAN's networks: G_M (gm.py), G_R (gr.py), D_I and D_V (critics.py), shared blocks.

    from frgan.nets import MotionForecaster, MotionRefiner, ImageCritic, VideoCritic, join

G_M(I_t, M_t, M_{t+k}) and G_R(V~, M-clip) return `GeneratorOutput(output, mask, content)`;
critics take `join(x, cond)` and return scores of shape (B,). Images are in [-1, 1].
"""
from frgan.nets.blocks import GeneratorOutput, count_parameters, init_weights
from frgan.nets.critics import ImageCritic, VideoCritic, join
from frgan.nets.gm import MotionForecaster
from frgan.nets.gr import MotionRefiner

# Short aliases in the paper's notation.
GM = MotionForecaster
GR = MotionRefiner
DI = ImageCritic
DV = VideoCritic

__all__ = [
    "GeneratorOutput", "MotionForecaster", "MotionRefiner", "ImageCritic", "VideoCritic", "join",
    "count_parameters", "init_weights", "GM", "GR", "DI", "DV",
]
