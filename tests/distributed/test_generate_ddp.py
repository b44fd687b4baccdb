"""`generate` on a DATA_DIR under torchrun: the ranks split the subset, rank 0 prints every hypothesis in input
order (the same output and BLEU as one process)."""
from __future__ import annotations

import pytest

from tests.conftest import invoke
from tests.distributed.conftest import run


def _generate_args(data, ckpt, *extra):
    # --batch-size 1: each sentence is decoded alone whichever rank has it, so scores match to the last bit
    return ["generate", str(data), "--path", str(ckpt), "--gen-subset", "test", "--output-format", "fairseq",
            "--beam", "2", "--batch-size", "1", "--device", "cpu", "--threads", "1", "--no-progress", *extra]


def _bleu_line(stderr: str) -> str:
    return next(line.split(" | ")[-1] for line in stderr.splitlines() if "Generate test with beam" in line)


@pytest.mark.slow  # a 2-process job
def test_two_ranks_split_the_subset_and_rank0_prints_all_in_input_order(runner, ddp_data, ddp_reference):
    ckpt = ddp_reference["save"] / "checkpoint_last.pt"
    one = invoke(runner, _generate_args(ddp_data, ckpt))
    assert one.exit_code == 0, one.output
    two = run(["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "seq2seq_cli",
               *_generate_args(ddp_data, ckpt)])
    assert two.returncode == 0, two.stderr
    assert two.stdout == one.stdout
    assert [line.split("\t")[0] for line in two.stdout.splitlines() if line.startswith("S-")] == \
        [f"S-{i}" for i in range(20)]
    assert two.stderr.count("Generate test with beam") == 1  # rank 0 alone logs, with the BLEU of all 20
    assert _bleu_line(two.stderr) == _bleu_line(one.stderr)


def test_raw_text_under_torchrun_is_refused(runner, ddp_data, tmp_path, monkeypatch):
    for name, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    for command in (["generate", "--path", tmp_path / "ck.pt"], ["interactive", "--path", tmp_path / "ck.pt"]):
        result = invoke(runner, command, input="a b\n")
        assert result.exit_code == 1
        assert result.stderr.strip() == (
            "Error: under torchrun (2 processes) generate splits a DATA_DIR subset across the processes; raw text "
            "(--input or stdin) is decoded by one process: run it without torchrun")
