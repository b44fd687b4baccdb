"""Output formats of `seq2seq generate` / `interactive`, one call per input sentence.

- `plain`: the detokenized hypothesis (with --nbest N: N lines per input, best first).
- `fairseq`: fairseq-generate's tab-separated lines, so existing scripts (`grep ^H | cut -f3`) keep working:
  `S-i` source, `T-i` reference (when known), then per hypothesis `H-i score tokens`, `D-i score detokenized`,
  `P-i positional scores`. As fairseq, scores are in base 2; unlike fairseq, sentences come in input order and
  i is the 0-based input index.
- `jsonl`: one JSON object per input: id, source, target (when known) and the n-best list with text, tokens, token
  ids, score and positional scores (natural log, EOS included).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from seq2seq_cli.decoding.base import Hypothesis

LN2 = math.log(2)


@dataclass
class Result:
    """Everything printed about one input sentence."""

    index: int  # 0-based position in the input
    source: str
    hypotheses: list[Hypothesis]
    texts: list[str]  # detokenized hypotheses (post-processed), aligned with `hypotheses`
    target: str | None = None  # detokenized reference, when decoding a DATA_DIR subset


def format_result(result: Result, output_format: str, tokenizer: Any, remove_bpe: str | None = None) -> list[str]:
    """The output lines for one sentence in `output_format` (plain, fairseq or jsonl)."""
    if output_format == "plain":
        return list(result.texts)
    if output_format == "fairseq":
        return _fairseq_lines(result, tokenizer, remove_bpe)
    if output_format == "jsonl":
        return [_json_line(result, tokenizer)]
    raise ValueError(f"unknown output format {output_format!r}")


def _base2(x: float) -> float:
    return x / LN2


def _fairseq_lines(result: Result, tokenizer: Any, remove_bpe: str | None) -> list[str]:
    from seq2seq_cli.decoding.translator import post_process

    i = result.index
    lines = [f"S-{i}\t{result.source}"]
    if result.target is not None:
        lines.append(f"T-{i}\t{result.target}")
    for hyp, text in zip(result.hypotheses, result.texts):
        score = _base2(hyp.score)
        tokens = post_process(" ".join(tokenizer.tokens(hyp.tokens)), remove_bpe)
        lines.append(f"H-{i}\t{score}\t{tokens}")
        lines.append(f"D-{i}\t{score}\t{text}")
        lines.append(f"P-{i}\t" + " ".join(f"{_base2(p):.4f}" for p in hyp.positional_scores))
    return lines


def _json_line(result: Result, tokenizer: Any) -> str:
    data: dict[str, Any] = {"id": result.index, "source": result.source}
    if result.target is not None:
        data["target"] = result.target
    data["hypotheses"] = [
        {"text": text, "tokens": tokenizer.tokens(hyp.tokens), "token_ids": list(hyp.tokens),
         "score": _finite(hyp.score), "positional_scores": [_finite(p) for p in hyp.positional_scores]}
        for hyp, text in zip(result.hypotheses, result.texts)
    ]
    return json.dumps(data, ensure_ascii=False)


def _finite(x: float) -> float | None:
    # JSON has no -inf; an impossible hypothesis (see search._nbest) gets null.
    return x if math.isfinite(x) else None
