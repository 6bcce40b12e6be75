"""FRGAN's losses (eqs. 4-9 for G_M and D_I, 11-14 for G_R and D_V, 15 the feature loss).

Normalisation: the paper writes L1 norms (eqs. 5, 6) and a squared L2 norm (eq. 15); every term
here is a *mean* over all elements (batch, channels, time, pixels), as in the authors' code
(`mean|x_hat - x|`, `mean|w|`), so the weights do not depend on image size or batch. A sum
equals the mean times the element count. Critic scores are averaged over the batch (the
expectations of WGAN).

Weights: eq. 4 and eq. 11 add the terms with unit weights, but the paper's norms are sums,
so unit weights on means are not the paper's balance either; the authors' code is the only
concrete setting: 3.0 (L_rec), 0.05 (L_r), 1 (adversarial). `LossWeights()` is that setting;
`LossWeights.paper()` gives the literal unit weights. The feature loss (eq. 15) is off
(weight 0, no extractors) unless the caller supplies extractors: nothing is downloaded.

Critic side (eqs. 8, 13): D(fake) - D(real) + lambda * L_gp, lambda = 10, with L_gp (eqs. 9,
14) = (||grad_{[x_hat, M]} D([x_hat, M])||_2 - 1)^2, x_hat = eps * real + (1 - eps) * fake, one
eps ~ U[0, 1) per sample, the norm taken per sample over the whole concatenated input [x_hat, M]
(the paper conditions the penalty on M), averaged over the batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from frgan.nets.blocks import GeneratorOutput
from frgan.nets.critics import join

GP_WEIGHT = 10.0  # lambda in eqs. 8, 13 (paper 3.2: "experimentally set to 10")

Critic = Callable[[torch.Tensor], torch.Tensor]  # joint input [x, M] -> scores (B,) or (B, 1)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator objectives (eqs. 4, 11; + eq. 15). Default: the authors' code."""

    rec: float = 3.0    # L_rec, eq. 5
    mask: float = 0.05  # L_r, eq. 6
    adv: float = 1.0    # L_gen, eq. 7 / eq. 12
    feat: float = 0.0   # L_feat, eq. 15 (paper 4.3 uses it for G_M on Penn Action)

    @classmethod
    def authors(cls) -> "LossWeights":
        return cls()

    @classmethod
    def paper(cls) -> "LossWeights":
        """Unit weights, eq. 4 as written (on means, see the module note)."""
        return cls(rec=1.0, mask=1.0, adv=1.0)


# ---------------------------------------------------------------------------------------------
# Terms.

def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_rec = mean |I - I~| (eq. 5; eq. 11 for clips)."""
    return (target - pred).abs().mean()


def mask_sparsity_loss(mask: torch.Tensor) -> torch.Tensor:
    """L_r = mean |m| (eq. 6): keeps the residual motion mask sparse."""
    return mask.abs().mean()


def _scores(critic: Critic, joint: torch.Tensor) -> torch.Tensor:
    return critic(joint).reshape(joint.shape[0], -1).mean(dim=1)


def frames_as_batch(clip: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B * T, C, H, W), frame-major within each clip."""
    b, c, t, h, w = clip.shape
    return clip.transpose(1, 2).reshape(b * t, c, h, w)


def image_adversarial_loss(d_image: Critic, frame: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """L_gen = -D_I([I~, M]) (eq. 7), averaged over the batch."""
    return -_scores(d_image, join(frame, cond)).mean()


def video_adversarial_loss(d_video: Critic, d_image: Critic, clip: torch.Tensor,
                           cond_clip: torch.Tensor) -> torch.Tensor:
    """L~_gen = -D_V([V, M-clip]) - (1/K) sum_i D_I([I_i, M_i]) (eq. 12), averaged over the batch."""
    video_term = _scores(d_video, join(clip, cond_clip)).mean()
    frame_term = _scores(d_image, join(frames_as_batch(clip), frames_as_batch(cond_clip))).mean()
    return -video_term - frame_term


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     cond: torch.Tensor, eps: Optional[torch.Tensor] = None) -> torch.Tensor:
    """L_gp = (||grad_{[x_hat, M]} D([x_hat, M])||_2 - 1)^2, batch mean (eqs. 9, 14).

    x_hat = eps * real + (1 - eps) * fake with one eps ~ U[0, 1) per sample; the gradient is
    taken w.r.t. the concatenated input [x_hat, M] and its norm over all of it, per sample.
    Works for frames (B, C, H, W) and clips (B, C, T, H, W). Differentiable (create_graph).
    `eps` (B, 1, ...) is drawn here unless given (multi-process training draws it for the global
    batch and passes each process its rows, see frgan.train.distributed).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    if eps is None:
        eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    joint = join(x_hat, cond.detach()).requires_grad_(True)
    scores = _scores(critic, joint)
    (grad,) = torch.autograd.grad(scores.sum(), joint, create_graph=True)
    norms = grad.reshape(grad.shape[0], -1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


@dataclass
class CriticLoss:
    """L_D = D(fake) - D(real) + lambda * L_gp (eqs. 8, 13), and its parts for logging."""

    total: torch.Tensor
    wasserstein: torch.Tensor  # D(real) - D(fake): the critic's estimate of the W-distance
    penalty: torch.Tensor      # L_gp, unweighted


def critic_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor,
                gp_weight: float = GP_WEIGHT, eps: Optional[torch.Tensor] = None) -> CriticLoss:
    """Eq. 8 (D_I on frames) / eq. 13 (D_V on clips); `fake` is detached (no generator grads).
    `eps`: the penalty's interpolation weights (drawn by `gradient_penalty` when None)."""
    fake = fake.detach()
    d_real = _scores(critic, join(real, cond)).mean()
    d_fake = _scores(critic, join(fake, cond)).mean()
    penalty = gradient_penalty(critic, real, fake, cond, eps)
    return CriticLoss(d_fake - d_real + gp_weight * penalty, d_real - d_fake, penalty)


# ---------------------------------------------------------------------------------------------
# Feature loss (eq. 15).

class FeatureLoss(nn.Module):
    """L_feat = sum_j mean (C_j(I) - C_j(I~))^2 (eq. 15) over user-given extractors C_j.

    The paper uses VGG16's last conv layer (C_1, on person crops at 224x224) and the stacked
    hourglass's last layer (C_2); none is bundled or downloaded: pass modules (frozen by the
    caller) or callables. Squared L2 as a mean over elements; the target side has no gradient.
    """

    def __init__(self, extractors: Sequence[Callable[[torch.Tensor], torch.Tensor]]):
        super().__init__()
        if not extractors:
            raise ValueError("FeatureLoss needs at least one feature extractor")
        self.extractors = list(extractors)
        self.held_modules = nn.ModuleList(e for e in extractors if isinstance(e, nn.Module))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = pred.new_zeros(())
        for extract in self.extractors:
            with torch.no_grad():
                wanted = extract(target)
            total = total + ((extract(pred) - wanted) ** 2).mean()
        return total


# ---------------------------------------------------------------------------------------------
# Generator objectives.

@dataclass
class GeneratorLoss:
    """A generator objective and its weighted sum; unweighted terms for logging."""

    total: torch.Tensor
    rec: torch.Tensor
    mask: torch.Tensor
    adv: torch.Tensor
    feat: torch.Tensor


def _mask_term(result: GeneratorOutput, like: torch.Tensor) -> torch.Tensor:
    # residual="diff"/"none" have no mask: L_r is 0 for them.
    return mask_sparsity_loss(result.mask) if result.mask is not None else like.new_zeros(())


def forecaster_loss(result: GeneratorOutput, target: torch.Tensor, cond_target: torch.Tensor,
                    d_image: Optional[Critic], weights: LossWeights = LossWeights(),
                    feature_loss: Optional[FeatureLoss] = None) -> GeneratorLoss:
    """L_{G_M} = w_rec L_rec + w_mask L_r + w_adv L_gen [+ w_feat L_feat] (eqs. 4-7, 15).

    `d_image=None` or `weights.adv == 0` skips the adversarial term (pure L1 pre-training).
    """
    pred = result.output
    rec = reconstruction_loss(pred, target)
    mask = _mask_term(result, pred)
    adv = (image_adversarial_loss(d_image, pred, cond_target)
           if d_image is not None and weights.adv != 0 else pred.new_zeros(()))
    feat = (feature_loss(pred, target)
            if feature_loss is not None and weights.feat != 0 else pred.new_zeros(()))
    total = weights.rec * rec + weights.mask * mask + weights.adv * adv + weights.feat * feat
    return GeneratorLoss(total, rec, mask, adv, feat)


def refiner_loss(result: GeneratorOutput, target_clip: torch.Tensor, cond_clip: torch.Tensor,
                 d_video: Optional[Critic], d_image: Optional[Critic],
                 weights: LossWeights = LossWeights()) -> GeneratorLoss:
    """L_{G_R} = w_rec L_rec + w_mask L_r + w_adv L~_gen (eqs. 11, 12). Needs both critics for
    the adversarial term (either None, or `weights.adv == 0`, skips it)."""
    pred = result.output
    rec = reconstruction_loss(pred, target_clip)
    mask = _mask_term(result, pred)
    adv = (video_adversarial_loss(d_video, d_image, pred, cond_clip)
           if d_video is not None and d_image is not None and weights.adv != 0
           else pred.new_zeros(()))
    total = weights.rec * rec + weights.mask * mask + weights.adv * adv
    return GeneratorLoss(total, rec, mask, adv, pred.new_zeros(()))
