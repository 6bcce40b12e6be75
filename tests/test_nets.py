"""G_M, G_R, D_I, D_V: shapes, value ranges, eqs. 1-3 and 10, dense connections, one Adam step."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from frgan.nets import (
    GeneratorOutput, ImageCritic, MotionForecaster, MotionRefiner, VideoCritic, count_parameters,
    join,
)
from frgan.nets.blocks import DenseBlock2d, channel_plan, spatial_halvings, temporal_strides

TOL = 1e-6
W = 4  # smoke-test width: shapes and wiring do not depend on it


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def frames(b, c, s):
    return torch.rand(b, c, s, s) * 2 - 1


def clips(b, c, t, s):
    return torch.rand(b, c, t, s, s) * 2 - 1


class NegInf(nn.Module):
    """A mask head that outputs -inf logits: sigmoid -> exactly 0."""

    def forward(self, x):
        return torch.full((x.shape[0], 1, *x.shape[2:]), float("-inf"))


# ---------------------------------------------------------------------------------------------
# Size plans.

def test_size_plans():
    assert [spatial_halvings(s) for s in (96, 64, 32, 16)] == [4, 4, 3, 2]
    assert channel_plan(64, 512, 4) == [64, 128, 256, 512, 512]
    assert temporal_strides(32, 4) == [2, 2, 2, 2]
    assert temporal_strides(16, 4) == [2, 2, 2, 1]
    assert temporal_strides(4, 3) == [2, 1, 1]
    with pytest.raises(ValueError):
        spatial_halvings(5)


# ---------------------------------------------------------------------------------------------
# G_M.

@pytest.mark.parametrize("size", [32, 64, 96])
@pytest.mark.parametrize("cond_channels", [3, 13])
def test_gm_shapes_and_ranges(size, cond_channels):
    net = MotionForecaster(size, cond_channels, width=W, max_width=16)
    out = net(frames(2, 3, size), torch.randn(2, cond_channels, size, size),
              torch.randn(2, cond_channels, size, size))
    assert isinstance(out, GeneratorOutput)
    assert out.output.shape == (2, 3, size, size)
    assert out.mask.shape == (2, 1, size, size)
    assert out.content.shape == (2, 3, size, size)
    assert out.output.min() >= -1 - TOL and out.output.max() <= 1 + TOL
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    assert out.content.min() >= -1 and out.content.max() <= 1


@pytest.mark.parametrize("skips", ["image", "all", "none"])
@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("code_dim", [128, None])
def test_gm_options_build_and_run(skips, dense, code_dim):
    net = MotionForecaster(32, 3, width=W, max_width=16, skips=skips, dense=dense, code_dim=code_dim)
    out = net(frames(2, 3, 32), torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32))
    assert out.output.shape == (2, 3, 32, 32)


@pytest.mark.parametrize("skips", ["image", "all", "none"])
@pytest.mark.parametrize("residual", ["mask", "diff"])
def test_gm_forward_targets_equals_forward_on_repeated_sources(skips, residual):
    """K targets per source, the source encoded once: the outputs of `forward` on each source
    repeated K times, up to float rounding (a convolution may sum in another order for another
    batch size), row b*K + k = target k of source b."""
    torch.manual_seed(0)
    net = MotionForecaster(32, 3, width=W, max_width=16, skips=skips, residual=residual).eval()
    b, k = 2, 3
    frame, source, targets = frames(b, 3, 32), torch.randn(b, 3, 32, 32), torch.randn(b, k, 3, 32, 32)
    with torch.no_grad():
        once = net.forward_targets(frame, source, targets)
        repeated = net(frame.repeat_interleave(k, 0), source.repeat_interleave(k, 0), targets.reshape(b * k, 3, 32, 32))
    for name in ("output", "mask", "content"):
        a, r = getattr(once, name), getattr(repeated, name)
        if r is None:
            assert a is None
            continue
        assert a.shape == r.shape
        torch.testing.assert_close(a, r, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="cond_targets must be"):
        net.forward_targets(frame, source, targets[:, 0])


def test_gm_rejects_wrong_shapes():
    net = MotionForecaster(32, 13, width=W, max_width=16)
    with pytest.raises(ValueError, match="cond_source"):
        net(frames(2, 3, 32), torch.randn(2, 3, 32, 32), torch.randn(2, 13, 32, 32))
    with pytest.raises(ValueError, match="frame"):
        net(frames(2, 3, 64), torch.randn(2, 13, 64, 64), torch.randn(2, 13, 64, 64))


def test_gm_zero_mask_returns_input_frame_exactly():
    net = MotionForecaster(32, 3, width=W, max_width=16)
    net.mask_head = NegInf()
    frame = frames(2, 3, 32)
    out = net(frame, torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32))
    assert torch.equal(out.mask, torch.zeros_like(out.mask))
    assert torch.equal(out.output, frame)


def test_gm_mask_output_is_eq2_blend():
    net = MotionForecaster(32, 3, width=W, max_width=16)
    frame = frames(2, 3, 32)
    out = net(frame, torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(out.output, out.mask * out.content + (1 - out.mask) * frame)


def test_gm_diff_is_eq1_and_none_is_direct():
    frame = frames(2, 3, 32)
    m_src, m_tgt = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    diff_net = MotionForecaster(32, 3, width=W, max_width=16, residual="diff")
    assert diff_net.mask_head is None
    out = diff_net(frame, m_src, m_tgt)
    assert out.mask is None
    assert out.content.abs().max() <= 2
    torch.testing.assert_close(out.output, torch.clamp(frame + out.content, -1, 1))
    # the difference map is 2 * tanh(content head)
    raw = {}
    diff_net.content_head.register_forward_hook(lambda m, i, o: raw.setdefault("x", o))
    out = diff_net(frame, m_src, m_tgt)
    torch.testing.assert_close(out.content, 2 * torch.tanh(raw["x"]))

    none_net = MotionForecaster(32, 3, width=W, max_width=16, residual="none")
    out = none_net(frame, m_src, m_tgt)
    assert out.mask is None
    assert torch.equal(out.output, out.content)
    assert out.output.min() >= -1 and out.output.max() <= 1
    with pytest.raises(ValueError):
        MotionForecaster(32, 3, width=W, residual="other")


def test_gm_motion_encoder_is_shared_and_eq3_cancels_equal_maps():
    # eq. 3: with M_t == M_{t+k}, f_M(M_{t+k}) - f_M(M_t) = 0, so (with f_I-only skips) the
    # output does not depend on the map at all. This needs one shared f_M.
    # train mode: batch-norm statistics keep activations O(1) at the N(0, 0.02) init (in eval
    # mode, fresh running statistics let the signal shrink layer by layer)
    net = MotionForecaster(32, 3, width=W, max_width=16).train()
    frame = frames(2, 3, 32)
    a, b = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32) * 5
    with torch.no_grad():
        torch.testing.assert_close(net(frame, a, a).output, net(frame, b, b).output)
        moved = (net(frame, a, b).output - net(frame, a, a).output).abs().max()
        assert moved > 1e-3
    encoders = [m for name, m in net.named_children() if name.endswith("encoder")]
    assert len(encoders) == 2  # f_I and one f_M


def _first_conv_inputs(net: MotionForecaster) -> list[int]:
    """Input channel counts actually seen by each decoder block's first conv (forward hooks)."""
    seen = []
    hooks = [b.first_conv.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
             for b in net.decoder.blocks]
    net(frames(1, 3, 64), torch.randn(1, 13, 64, 64), torch.randn(1, 13, 64, 64))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("skips,skip_mult", [("image", 1), ("all", 3), ("none", 0)])
def test_dense_decoder_feeds_every_earlier_block(skips, skip_mult):
    net = MotionForecaster(64, 13, width=W, max_width=64, skips=skips).eval()
    blocks = list(net.decoder.blocks)
    assert all(isinstance(b, DenseBlock2d) for b in blocks)
    outs = [b.out_channels for b in blocks]
    skip = [o * skip_mult for o in outs]  # block j runs at the scale whose channels it outputs
    seen = _first_conv_inputs(net)
    bottom = outs[0]  # block 0 receives the bottleneck map decoded from the code
    expected = [bottom + skip[0]] + [sum(outs[:j]) + skip[j] for j in range(1, len(blocks))]
    assert seen == expected
    # every earlier block, not only the predecessor: strictly more than predecessor + skip
    for j in range(2, len(blocks)):
        assert seen[j] > outs[j - 1] + skip[j]


def test_without_dense_each_block_sees_predecessor_and_skip_only():
    net = MotionForecaster(64, 13, width=W, max_width=64, dense=False).eval()
    outs = [b.out_channels for b in net.decoder.blocks]
    seen = _first_conv_inputs(net)
    expected = [outs[0] + outs[0]] + [outs[j - 1] + outs[j] for j in range(1, len(outs))]
    assert seen == expected


def test_gm_one_adam_step_reduces_l1():
    net = MotionForecaster(32, 3, width=8, max_width=32)
    frame, target = frames(4, 3, 32), frames(4, 3, 32)
    m_src, m_tgt = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.0, 0.9))

    def l1():
        return (net(frame, m_src, m_tgt).output - target).abs().mean()

    before = l1()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = l1()
    assert after.item() < before.item()


def test_generator_init_and_normalisation():
    net = MotionForecaster(32, 3, width=16, max_width=64)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    bn_w = torch.cat([m.weight.detach() for m in bns])
    assert abs(bn_w.mean().item() - 1.0) < 0.01 and abs(bn_w.std().item() - 0.02) < 0.01
    conv_w = torch.cat([m.weight.detach().flatten() for m in net.modules() if isinstance(m, nn.Conv2d)])
    assert abs(conv_w.std().item() - 0.02) < 0.002 and abs(conv_w.mean().item()) < 0.002
    plain = MotionForecaster(32, 3, width=W, max_width=16, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


# ---------------------------------------------------------------------------------------------
# G_R.

@pytest.mark.parametrize("t,size,cond_channels", [(4, 32, 3), (16, 64, 13), (4, 16, 3)])
def test_gr_shapes_and_ranges(t, size, cond_channels):
    net = MotionRefiner(size, t, cond_channels, width=W, max_width=16)
    clip = clips(2, 3, t, size)
    out = net(clip, torch.randn(2, cond_channels, t, size, size))
    assert out.output.shape == (2, 3, t, size, size)
    assert out.mask.shape == (2, 1, t, size, size)
    assert out.content.shape == (2, 3, t, size, size)
    assert out.output.min() >= -1 - TOL and out.output.max() <= 1 + TOL
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    torch.testing.assert_close(out.output, out.mask * out.content + (1 - out.mask) * clip)  # eq. 10


def test_gr_zero_mask_returns_input_clip_exactly():
    net = MotionRefiner(32, 4, 3, width=W, max_width=16)
    net.mask_head = NegInf()
    clip = clips(2, 3, 4, 32)
    out = net(clip, torch.randn(2, 3, 4, 32, 32))
    assert torch.equal(out.output, clip)


def test_gr_is_strided_not_pooled_and_rejects_short_clips():
    net = MotionRefiner(32, 8, 3, width=W, max_width=16, skips=False)
    kinds = {type(m) for m in net.modules()}
    assert nn.ConvTranspose3d in kinds and not any("Pool" in k.__name__ for k in kinds)
    assert net(clips(1, 3, 8, 32), torch.randn(1, 3, 8, 32, 32)).output.shape == (1, 3, 8, 32, 32)
    with pytest.raises(ValueError):
        MotionRefiner(32, 2, 3, width=W)


# ---------------------------------------------------------------------------------------------
# Critics.

@pytest.mark.parametrize("size,cond_channels", [(32, 3), (64, 13), (96, 3)])
def test_image_critic_scores(size, cond_channels):
    critic = ImageCritic(size, cond_channels, width=W, max_width=16)
    scores = critic(join(frames(3, 3, size), torch.randn(3, cond_channels, size, size)))
    assert scores.shape == (3,)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Sigmoid)) for m in critic.modules())


@pytest.mark.parametrize("t,size,cond_channels", [(4, 32, 3), (16, 64, 13), (32, 96, 3)])
def test_video_critic_scores(t, size, cond_channels):
    critic = VideoCritic(size, t, cond_channels, width=W, max_width=16)
    scores = critic(join(clips(2, 3, t, size), torch.randn(2, cond_channels, t, size, size)))
    assert scores.shape == (2,)
    assert not any(isinstance(m, (nn.BatchNorm3d, nn.Sigmoid)) for m in critic.modules())


def test_parameter_counts_grow_with_width():
    small = count_parameters(MotionForecaster(32, 3, width=4, max_width=16))
    large = count_parameters(MotionForecaster(32, 3, width=8, max_width=32))
    assert 0 < small < large
