import torch
import torch.nn.functional as F
from torch import Tensor


def straight_through_mask(guide: Tensor) -> Tensor:
    """Region mask of guide logits (B, m, H, W).

    Forward: the one-hot argmax over dim 1 (lowest index on ties). Backward:
    the gradient of softmax(guide), DRConv's surrogate for the argmax.
    """
    soft = torch.softmax(guide, dim=1)
    hard = F.one_hot(guide.max(dim=1).indices, guide.shape[1])
    hard = hard.permute(0, 3, 1, 2).to(soft.dtype)
    return hard + soft - soft.detach()
