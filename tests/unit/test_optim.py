"""The adam optimizer (AdamW, decoupled weight decay) and parsing of --adam-betas."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from seq2seq_cli.config import from_dict, to_dict
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import OPTIMIZERS
from seq2seq_cli.training.optim import parse_betas

Adam = OPTIMIZERS.get("adam")


@pytest.mark.parametrize("text", ["(0.9, 0.98)", "0.9,0.98", "0.9 0.98", " ( 0.9 ,0.98 ) ", "[0.9, 0.98]",
                                  "(.9, 9.8e-1)"])
def test_parse_betas_accepts_fairseq_and_plain_forms(text):
    assert parse_betas(text) == (0.9, 0.98)


@pytest.mark.parametrize("text", ["0.9", "(0.9, 0.98, 0.99)", "a,b", "", "0.9;0.98", "(0.9, 1.5)", "0.9,,0.98"])
def test_parse_betas_rejects_anything_else(text):
    with pytest.raises(ConfigError, match="--adam-betas"):
        parse_betas(text)


def test_defaults_are_fairseqs():
    cfg = Adam.Config()
    assert (cfg.adam_betas, cfg.adam_eps, cfg.weight_decay) == ((0.9, 0.999), 1e-8, 0.0)
    assert from_dict(Adam.Config, to_dict(Adam.Config(adam_betas=(0.9, 0.98)))).adam_betas == (0.9, 0.98)


def reference_adamw_step(p: torch.Tensor, grad: torch.Tensor, lr: float, betas, eps: float, wd: float, step: int,
                         m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One AdamW step written out: decay the weights by lr * wd, then the bias-corrected Adam update."""
    p = p * (1 - lr * wd)
    m.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
    v.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    return p - lr * m_hat / (v_hat.sqrt() + eps)


def test_adam_is_adamw_with_decoupled_weight_decay():
    cfg = Adam.Config(adam_betas=(0.9, 0.98), adam_eps=1e-6, weight_decay=0.1)
    gen = torch.Generator().manual_seed(0)
    param = torch.nn.Parameter(torch.randn(5, 3, generator=gen))
    expected = param.detach().clone()
    m, v = torch.zeros_like(expected), torch.zeros_like(expected)
    opt = Adam.build(cfg, [param], lr=0.01)
    assert isinstance(opt, torch.optim.AdamW)
    for step in range(1, 4):
        grad = torch.randn(5, 3, generator=gen)
        param.grad = grad.clone()
        opt.step()
        expected = reference_adamw_step(expected, grad, 0.01, (0.9, 0.98), 1e-6, 0.1, step, m, v)
    torch.testing.assert_close(param.detach(), expected)


def test_weight_decay_is_decoupled_from_the_gradient_scale():
    # With a zero gradient, Adam's update is 0 and only the decay acts: p * (1 - lr * wd) exactly,
    # whereas L2-regularised Adam would turn the decay into a normalised step of size ~lr.
    param = torch.nn.Parameter(torch.full((4,), 2.0))
    opt = Adam.build(Adam.Config(weight_decay=0.5), [param], lr=0.1)
    param.grad = torch.zeros(4)
    opt.step()
    torch.testing.assert_close(param.detach(), torch.full((4,), 2.0 * (1 - 0.1 * 0.5)))


def test_param_groups_and_state_dict_round_trip():
    params = [torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))]
    opt = Adam.build(Adam.Config(), params, lr=0.1)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    clone = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt2 = Adam.build(Adam.Config(), clone, lr=0.1)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # as if saved: no tensors shared with opt
    for a, b in zip(params, clone):
        a.grad, b.grad = torch.full_like(a, 0.3), torch.full_like(b, 0.3)
    opt.step()
    opt2.step()
    for a, b in zip(params, clone):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("change,message", [
    ({"adam_betas": (0.9, 1.0)}, r"--adam-betas \(0.9, 1.0\): expected two betas, each in \[0, 1\)"),
    ({"adam_eps": 0.0}, "--adam-eps 0.0: must be positive"),
    ({"weight_decay": -1.0}, "--weight-decay -1.0: must be 0 or more"),
])
def test_bad_settings_are_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        Adam.build(dataclasses.replace(Adam.Config(), **change), [torch.nn.Parameter(torch.ones(1))], lr=0.1)


def test_fused_kernel_is_used_on_cpu():
    # the fused AdamW kernel was ~3x faster than the for-loop and foreach ones on CPU (see optim.py)
    opt = Adam.build(Adam.Config(), [torch.nn.Parameter(torch.ones(2))], lr=0.1)
    assert opt.defaults["fused"] is True
