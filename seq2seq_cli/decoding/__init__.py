"""Decoding: strategies (greedy, beam, sampling) and the generation loop that keeps their books.

- `base.py`: `DecodingStrategy` (one `step()` over log-probabilities) and `Hypothesis`.
- `greedy.py`, `beam.py`, `sampling.py`: the built-in strategies, each with its own `Config`.
- `config.py`: `SearchConfig` (loop-level options: nbest, lenpen, lengths, penalties) and `GenerateConfig`.
- `search.py`: the loop (incremental decoder state, finished hypotheses, constraints, batch shrinking).
- `ensemble.py`: several models behind one interface (probabilities averaged).
- `translator.py`: text in, text out (tokenization, length-sorted batches, order restored).
- `output.py`: the output formats (plain, fairseq, jsonl).
- `run.py`: `run_generate` for `seq2seq generate`/`interactive`, `translate_ids` for other code.

This package and the strategy/config modules import no torch at import time, so the CLI can read their defaults.
"""
