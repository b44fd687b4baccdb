"""SpecAugment (Park et al., 2019): frequency and time masking of filterbank features, during training only.

Time warping is not implemented (fairseq's recipes leave it off too). Masked values are set to 0, which after
utterance CMVN is each dimension's mean. Masks stay inside each utterance's real frames. Random numbers come from
torch's global generator, which the trainer re-seeds at every update, so a resumed run masks as the original did.
"""
from __future__ import annotations

import torch
from torch import nn


class SpecAugment(nn.Module):
    """`freq_mask_n` bands of at most `freq_mask_f` mel bins and `time_mask_n` spans of at most
    min(`time_mask_t`, `time_mask_p` x length) frames, each width uniform from 0 up to its bound (fairseq's
    SpecAugmentTransform). An identity in eval mode, or when both counts are 0."""

    def __init__(self, freq_mask_n: int, freq_mask_f: int, time_mask_n: int, time_mask_t: int,
                 time_mask_p: float) -> None:
        super().__init__()
        self.freq_mask_n, self.freq_mask_f = freq_mask_n, freq_mask_f
        self.time_mask_n, self.time_mask_t, self.time_mask_p = time_mask_n, time_mask_t, time_mask_p

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Shape: feats (B, T, F), lengths (B,) real frames -> (B, T, F), masked in training mode."""
        if not self.training or (self.freq_mask_n == 0 and self.time_mask_n == 0):
            return feats
        num_bins = feats.size(2)
        for _ in range(self.freq_mask_n):
            bound = torch.full_like(lengths, min(self.freq_mask_f, num_bins))
            feats = feats.masked_fill(_band(bound, torch.full_like(lengths, num_bins), num_bins)[:, None, :], 0.0)
        caps = torch.minimum(torch.full_like(lengths, self.time_mask_t),
                             (self.time_mask_p * lengths.double()).floor().long())
        for _ in range(self.time_mask_n):
            feats = feats.masked_fill(_band(caps, lengths, feats.size(1))[:, :, None], 0.0)
        return feats


def _band(max_width: torch.Tensor, extent: torch.Tensor, size: int) -> torch.Tensor:
    """Per row, a random run of width U{0..max_width} inside [0, extent); shape (B,), (B,) -> (B, size) bool."""
    width = (torch.rand(max_width.shape, device=max_width.device) * (max_width + 1)).floor().long()
    width = torch.minimum(width, extent)
    start = (torch.rand(extent.shape, device=extent.device) * (extent - width + 1)).floor().long()
    pos = torch.arange(size, device=extent.device)[None, :]
    return (pos >= start[:, None]) & (pos < (start + width)[:, None])
