"""FRGAN's losses: eqs. 5-9 and 12-15."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from frgan.losses import (
    GP_WEIGHT, FeatureLoss, LossWeights, critic_loss, forecaster_loss, frames_as_batch,
    gradient_penalty, image_adversarial_loss, mask_sparsity_loss, reconstruction_loss,
    refiner_loss, video_adversarial_loss,
)
from frgan.nets import GeneratorOutput, join


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def linear_critic(in_features: int, norm: float = 1.0, mask: slice | None = None) -> nn.Module:
    """A linear critic on the flattened joint input whose weight vector has norm `norm`.

    `mask`, if given, zeroes the weight outside that slice of the flattened input first.
    """
    lin = nn.Linear(in_features, 1)
    with torch.no_grad():
        w = torch.randn(1, in_features)
        if mask is not None:
            keep = torch.zeros_like(w)
            keep[:, mask] = 1
            w = w * keep
        lin.weight.copy_(w / w.norm() * norm)
    return nn.Sequential(nn.Flatten(), lin)


def test_reconstruction_and_mask_terms_are_means():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert reconstruction_loss(a, b).item() == pytest.approx(0.5)
    m = torch.zeros(2, 1, 4, 4)
    m[0, 0, 0, 0] = 1.0
    assert mask_sparsity_loss(m).item() == pytest.approx(1 / 32)
    assert LossWeights() == LossWeights(rec=3.0, mask=0.05, adv=1.0, feat=0.0)
    assert LossWeights.paper() == LossWeights(rec=1.0, mask=1.0, adv=1.0, feat=0.0)
    assert GP_WEIGHT == 10.0


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (3, 3, 4, 8, 8)])
def test_gradient_penalty_is_zero_for_unit_norm_linear_critic(shape):
    b = shape[0]
    cond = torch.randn(b, 2, *shape[2:])
    per_sample = (shape[1] + 2) * int(torch.tensor(shape[2:]).prod())
    real, fake = torch.rand(shape) * 2 - 1, torch.rand(shape) * 2 - 1
    assert gradient_penalty(linear_critic(per_sample), real, fake, cond).item() < 1e-6
    # norm 2 -> (2 - 1)^2 = 1
    gp2 = gradient_penalty(linear_critic(per_sample, norm=2.0), real, fake, cond)
    assert gp2.item() == pytest.approx(1.0, abs=1e-5)


def test_gradient_penalty_differentiates_wrt_the_condition_too():
    # a unit-norm critic that only looks at M: the penalty on [x_hat, M] is 0; had the gradient
    # been taken w.r.t. x_hat alone, its norm would be 0 and the penalty 1.
    real, fake, cond = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), torch.randn(2, 1, 4, 4)
    n_x, n_m = 3 * 16, 16
    critic = linear_critic(n_x + n_m, mask=slice(n_x, n_x + n_m))
    assert gradient_penalty(critic, real, fake, cond).item() < 1e-6


def test_gradient_penalty_interpolates_with_one_eps_per_sample():
    # D(j) = 0.5 * sum j^2 -> grad = j, so the penalty reveals x_hat.
    critic = lambda j: 0.5 * (j ** 2).flatten(1).sum(1)  # noqa: E731
    real, fake, cond = torch.rand(3, 3, 4, 4), torch.rand(3, 3, 4, 4), torch.randn(3, 1, 4, 4)
    torch.manual_seed(7)
    got = gradient_penalty(critic, real, fake, cond)
    torch.manual_seed(7)
    eps = torch.rand(3, 1, 1, 1)
    joint = join(eps * real + (1 - eps) * fake, cond)
    want = ((joint.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(got, want)


def test_gradient_penalty_is_differentiable_for_the_critic():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4 * 16, 8), nn.Tanh(), nn.Linear(8, 1))
    gp = gradient_penalty(critic, torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), torch.rand(2, 1, 4, 4))
    gp.backward()
    assert critic[1].weight.grad is not None and critic[1].weight.grad.abs().sum() > 0


def test_critic_loss_is_eq8_and_does_not_reach_the_generator():
    critic = linear_critic(4 * 16)
    real, cond = torch.rand(2, 3, 4, 4), torch.rand(2, 1, 4, 4)
    gen_param = torch.ones((), requires_grad=True)
    fake = torch.rand(2, 3, 4, 4) * gen_param
    loss = critic_loss(critic, real, fake, cond)
    d_real = critic(join(real, cond)).mean()
    d_fake = critic(join(fake.detach(), cond)).mean()
    torch.testing.assert_close(loss.wasserstein.detach(), (d_real - d_fake).detach())
    torch.testing.assert_close(loss.total.detach(), (d_fake - d_real + 10 * loss.penalty).detach())
    assert loss.penalty.item() < 1e-6
    loss.total.backward()
    assert gen_param.grad is None


def test_generator_adversarial_terms_eq7_and_eq12():
    d_image = lambda j: j.flatten(1).mean(1)  # noqa: E731
    d_video = lambda j: 2 * j.flatten(1).mean(1)  # noqa: E731
    frame, cond = torch.rand(2, 3, 4, 4), torch.rand(2, 1, 4, 4)
    torch.testing.assert_close(image_adversarial_loss(d_image, frame, cond), -join(frame, cond).mean())

    clip, cond_clip = torch.rand(2, 3, 5, 4, 4), torch.rand(2, 1, 5, 4, 4)
    per_frame = torch.stack([d_image(join(clip[:, :, i], cond_clip[:, :, i])) for i in range(5)], 1)
    want = -d_video(join(clip, cond_clip)).mean() - per_frame.mean(1).mean()
    torch.testing.assert_close(video_adversarial_loss(d_video, d_image, clip, cond_clip), want)
    assert torch.equal(frames_as_batch(clip)[1], clip[0, :, 1])


def test_forecaster_and_refiner_objectives_weight_their_terms():
    d_image = lambda j: j.flatten(1).mean(1)  # noqa: E731
    frame, target = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    mask, cond = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    result = GeneratorOutput(frame, mask, frame)
    w = LossWeights()
    loss = forecaster_loss(result, target, cond, d_image, w)
    want = (3.0 * reconstruction_loss(frame, target) + 0.05 * mask.mean()
            + image_adversarial_loss(d_image, frame, cond))
    torch.testing.assert_close(loss.total, want)
    # no mask (residual="diff"/"none") and no critic (L1 pre-training): L_rec alone
    plain = forecaster_loss(GeneratorOutput(frame, None, frame), target, cond, None, w)
    torch.testing.assert_close(plain.total, 3.0 * reconstruction_loss(frame, target))

    clip, tclip, cclip = torch.rand(2, 3, 4, 4, 4), torch.rand(2, 3, 4, 4, 4), torch.rand(2, 1, 4, 4, 4)
    cmask = torch.rand(2, 1, 4, 4, 4)
    d_video = lambda j: j.flatten(1).mean(1)  # noqa: E731
    rl = refiner_loss(GeneratorOutput(clip, cmask, clip), tclip, cclip, d_video, d_image, w)
    want = (3.0 * reconstruction_loss(clip, tclip) + 0.05 * cmask.mean()
            + video_adversarial_loss(d_video, d_image, clip, cclip))
    torch.testing.assert_close(rl.total, want)


def test_feature_loss_eq15_with_user_extractors():
    c1 = nn.Conv2d(3, 4, 3)
    c2 = lambda x: x.mean(dim=(2, 3))  # noqa: E731
    feat = FeatureLoss([c1, c2])
    a = torch.rand(2, 3, 8, 8, requires_grad=True)
    b = torch.rand(2, 3, 8, 8, requires_grad=True)
    assert feat(b, b).item() == pytest.approx(0.0)
    value = feat(a, b)
    want = ((c1(a) - c1(b)) ** 2).mean() + ((c2(a) - c2(b)) ** 2).mean()
    torch.testing.assert_close(value, want)
    value.backward()
    assert a.grad is not None and b.grad is None
    with pytest.raises(ValueError):
        FeatureLoss([])
    # off by default: the weight is 0, so a given feature loss does not enter the total
    result = GeneratorOutput(a.detach(), None, a.detach())
    off = forecaster_loss(result, b.detach(), torch.rand(2, 1, 8, 8), None, LossWeights(), feat)
    assert off.feat.item() == 0.0
    on = forecaster_loss(result, b.detach(), torch.rand(2, 1, 8, 8), None,
                         LossWeights(feat=1.0), feat)
    assert on.feat.item() > 0
