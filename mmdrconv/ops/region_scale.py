"""Region-wise channel scaling: the fast path of modulated DRConv.

With region filters ``weight * scales[b, r, :, None, None, None]``, DRConv's
output is ``conv(x, weight) * scales[b, region(p)]`` per pixel p: one
convolution plus an elementwise product, exactly, with the same softmax
surrogate for the guide.
"""
import torch
import torch.nn.functional as F
from torch import Tensor
from typing import Optional


def _pixel_scales(scales: Tensor, region: Tensor) -> Tensor:
    """scales (B, m, O), region (B, H, W) -> (B, O, H, W).

    A bmm with the one-hot region map: faster on the CPU than a gather with
    an (B, O, H*W) int64 index.
    """
    batch, regions, out_channels = scales.shape
    one_hot = F.one_hot(region.flatten(1), regions).to(scales.dtype)
    pixel = torch.bmm(scales.transpose(1, 2), one_hot.transpose(1, 2))
    return pixel.view(batch, out_channels, *region.shape[1:])


class RegionScaleFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, out, scales, guide, bias):
        region = guide.max(dim=1).indices  # lowest index on ties
        pixel_scales = _pixel_scales(scales, region)
        if bias is None:
            y = out * pixel_scales
        else:  # fused: one pass over the output
            y = torch.addcmul(bias.view(1, -1, 1, 1), out, pixel_scales)
        ctx.save_for_backward(out, scales, guide, region)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_y):
        out, scales, guide, region = ctx.saved_tensors
        grad_out = grad_scales = grad_guide = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_out = grad_y * _pixel_scales(scales, region)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            # t[b, o, p] = dL/dy * conv(x, weight): the response per unit
            # scale, from which both remaining gradients follow.
            t = (grad_y * out).flatten(2)
            if ctx.needs_input_grad[1]:
                one_hot = F.one_hot(region.flatten(1),
                                    scales.shape[1]).to(t.dtype)
                grad_scales = torch.bmm(t, one_hot).transpose(1, 2)
            if ctx.needs_input_grad[2]:
                # a_j(p) = sum_o t[o, p] * scales[j, o]
                a = torch.bmm(scales.to(t.dtype), t)
                soft = torch.softmax(guide.reshape(a.shape).to(a.dtype), 1)
                grad_guide = soft * (a - (soft * a).sum(1, keepdim=True))
                grad_guide = grad_guide.view(guide.shape).to(guide.dtype)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_bias = grad_y.sum((0, 2, 3))
        return grad_out, grad_scales, grad_guide, grad_bias


def region_scale(out: Tensor,
                 scales: Tensor,
                 guide: Tensor,
                 bias: Optional[Tensor] = None) -> Tensor:
    """Scale each pixel of ``out`` (B, O, H, W) by its region's channel scales,
    then add the optional (O,) ``bias``.

    Args:
        out: (B, O, H, W), typically ``conv(x, weight)``.
        scales: (B, m, O) per-sample, per-region channel scales.
        guide: (B, m, H, W) guide logits; region = argmax over m.
    """
    if scales.dim() != 3 or scales.shape[0] != out.shape[0] or \
            scales.shape[2] != out.shape[1]:
        raise ValueError(f'scales must be (B, m, O) = ({out.shape[0]}, m, '
                         f'{out.shape[1]}), got {tuple(scales.shape)}')
    if guide.shape != (out.shape[0], scales.shape[1], *out.shape[2:]):
        raise ValueError(f'guide must be (B, m, H, W) = '
                         f'{(out.shape[0], scales.shape[1], *out.shape[2:])},'
                         f' got {tuple(guide.shape)}')
    scales = scales.to(out.dtype)
    bias = bias.to(out.dtype) if bias is not None else None
    return RegionScaleFunction.apply(out, scales, guide, bias)
