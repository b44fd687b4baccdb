"""Plugins through the CLI: the example package pip-installed (entry points), and --user-dir folders.

The example package (examples/plugin) has a tokenizer (lowercase-word), a model with its arch preset
(transformer_layerdrop, transformer_layerdrop_small) and a decoding strategy (diverse-beam): each is used from the
CLI (preprocess, train, generate), once through the installed entry points and once as --user-dir in processes that
see no installed plugin; the two components with logic of their own also get unit tests here.

The example plugin is installed into the test environment with `pip install --no-deps --no-build-isolation` from a
copy in a temporary folder (so no build/ or *.egg-info lands in the checkout); when the installed copy already
matches examples/plugin, the install is skipped. It stays installed afterwards: tests elsewhere must not assume
that `lowercase-word` is absent from the installed entry points.
"""
from __future__ import annotations

import configparser
import importlib
import re
import shutil
import subprocess
import sys
import uuid
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from seq2seq_cli.registry import ARCHS, REGISTRIES, TOKENIZERS
from tests.conftest import REPO, invoke
from tests.train_fixtures import TINY_MODEL, ok

PLUGIN_SRC = REPO / "examples" / "plugin"
DIST_NAME = "seq2seq-plugin-example"


def _installed_matches_source() -> bool:
    """True when the installed plugin has the same modules and entry points as examples/plugin."""
    try:
        dist = distribution(DIST_NAME)
    except PackageNotFoundError:
        return False
    for src in (PLUGIN_SRC / "seq2seq_plugin_example").glob("*.py"):
        installed = Path(dist.locate_file(f"seq2seq_plugin_example/{src.name}"))
        if not installed.is_file() or installed.read_bytes() != src.read_bytes():
            return False
    cfg = configparser.ConfigParser()
    cfg.read(PLUGIN_SRC / "setup.cfg", encoding="utf-8")
    declared = {(group, line.split("=")[0].strip(), line.split("=")[1].strip())
                for group, block in cfg["options.entry_points"].items() for line in block.strip().splitlines()}
    return declared == {(ep.group, ep.name, ep.value) for ep in dist.entry_points}


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory) -> None:
    if not _installed_matches_source():
        build = tmp_path_factory.mktemp("plugin") / "plugin"
        shutil.copytree(PLUGIN_SRC, build, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                               "--no-input", "--disable-pip-version-check", "-q", str(build)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        importlib.invalidate_caches()  # let this process import the newly installed package
    assert _installed_matches_source()


@pytest.fixture
def scratch_registries():
    """Whatever a test registers (through --user-dir, in this process) is forgotten afterwards.

    Built-ins registered meanwhile stay: their modules are imported once per process and cannot register again.
    """
    names = {kind: set(registry._entries) for kind, registry in REGISTRIES.items()}
    before = set(sys.modules)
    yield
    for kind, registry in REGISTRIES.items():
        for name in set(registry._entries) - names[kind] - set(registry._builtin_modules):
            del registry._entries[name]
    for name in set(sys.modules) - before:
        if name.startswith("s2s_userdir_"):
            del sys.modules[name]


def seq2seq(*args: str | Path) -> subprocess.CompletedProcess:
    """`python -m seq2seq_cli ARGS` in a fresh process, as a user would run it after `pip install`."""
    return subprocess.run([sys.executable, "-m", "seq2seq_cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_installed_plugin_is_found_through_its_entry_point(installed_plugin):
    assert "lowercase-word" in TOKENIZERS.names()
    cls = TOKENIZERS.get("lowercase-word", flag="--tokenizer")
    assert cls.__module__ == "seq2seq_plugin_example.tokenizer"
    assert Path(sys.modules[cls.__module__].__file__).resolve().is_relative_to(
        Path(distribution(DIST_NAME).locate_file("")).resolve())  # the installed copy, not examples/plugin
    tok = cls.train(cls.Config(), ["Hello, World!", "hello there world"])
    ids = tok.encode_batch(["HELLO world, Unseen"])[0]
    assert tok.tokens(ids) == ["hello", "world", ",", "<unk>"]
    assert (tok.bos_id, tok.pad_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)


def test_list_tokenizer_shows_the_installed_plugin(installed_plugin):
    proc = seq2seq("list", "tokenizer")
    assert proc.returncode == 0, proc.stderr
    assert "lowercase-word  [seq2seq_plugin_example.tokenizer.LowercaseWordTokenizer]" in proc.stdout
    assert "vocab_size: int = 8000" in proc.stdout and "min_frequency: int = 1" in proc.stdout
    assert "bpe  [" in proc.stdout  # the built-ins are still there


def write_corpus(folder: Path) -> Path:
    """A tiny mixed-case parallel corpus with punctuation: {train,valid}.{src,tgt}."""
    folder.mkdir(parents=True, exist_ok=True)
    words = ["Alpha", "beta", "GAMMA", "delta", "Epsilon", "zeta"]
    for split, n in (("train", 40), ("valid", 5)):
        src = [" ".join(words[(i + j) % 6] for j in range(2 + i % 4)) + "," for i in range(n)]
        (folder / f"{split}.src").write_text("\n".join(src) + "\n", encoding="utf-8")
        (folder / f"{split}.tgt").write_text("\n".join(s.upper() for s in src) + "\n", encoding="utf-8")
    return folder


def preprocess_args(raw: Path, dest: Path, tokenizer: str) -> list[str]:
    return ["preprocess", "--source-lang", "src", "--target-lang", "tgt", "--trainpref", raw / "train",
            "--validpref", raw / "valid", "--destdir", dest, "--tokenizer", tokenizer]


def assert_lowercase_words(dest: Path) -> None:
    from seq2seq_cli.data.datadir import DataDir

    dd = DataDir(dest)
    tok = dd.tokenizer("tgt")
    ids = dd.dataset("train", "tgt")[0].tolist()
    assert tok.tokens(ids) == ["alpha", "beta", ","]  # "ALPHA BETA," lowercased, the comma split off


def test_preprocess_with_the_installed_plugin_tokenizer(installed_plugin, tmp_path):
    raw = write_corpus(tmp_path / "raw")
    proc = seq2seq(*preprocess_args(raw, tmp_path / "data-bin", "lowercase-word"))
    assert proc.returncode == 0, proc.stderr
    assert_lowercase_words(tmp_path / "data-bin")


def write_user_dir(root: Path) -> tuple[Path, str, str]:
    """A plugin package folder registering a tokenizer and an arch under fresh names."""
    suffix = uuid.uuid4().hex[:8]
    package, tok_name, arch_name = f"s2s_userdir_{suffix}", f"userdir-word-{suffix}", f"userdir_arch_{suffix}"
    folder = root / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("from . import components  # noqa: F401\n", encoding="utf-8")
    (folder / "components.py").write_text(
        "from seq2seq_cli.registry import ARCHS, TOKENIZERS\n"
        "from seq2seq_plugin_example.tokenizer import LowercaseWordTokenizer\n"
        f"@TOKENIZERS.register({tok_name!r})\n"
        "class UserWordTokenizer(LowercaseWordTokenizer):\n"
        "    '''The example tokenizer under another name.'''\n"
        f"@ARCHS.register({arch_name!r})\n"
        f"def {arch_name}():\n"
        "    '''A one-layer transformer.'''\n"
        "    return 'transformer', {'encoder_layers': 1, 'decoder_layers': 1}\n",
        encoding="utf-8",
    )
    return folder, tok_name, arch_name


def test_user_dir_components_are_listed(installed_plugin, runner, tmp_path, scratch_registries):
    folder, tok_name, arch_name = write_user_dir(tmp_path)
    result = invoke(runner, ["list", "--user-dir", folder, "arch"])
    assert result.exit_code == 0, result.output
    assert f"  {arch_name}  [{folder.name}.components.{arch_name}] A one-layer transformer." in result.stdout
    assert "      model: transformer\n      encoder_layers = 1\n      decoder_layers = 1" in result.stdout
    result = invoke(runner, ["list", "tokenizer", "--user-dir", folder])
    assert result.exit_code == 0, result.output
    assert f"  {tok_name}  [{folder.name}.components.UserWordTokenizer]" in result.stdout


def test_preprocess_with_a_user_dir_tokenizer(installed_plugin, tmp_path):
    folder, tok_name, _ = write_user_dir(tmp_path)
    raw = write_corpus(tmp_path / "raw")
    unknown = seq2seq(*preprocess_args(raw, tmp_path / "no", tok_name))
    assert unknown.returncode != 0 and f"'{tok_name}'" in unknown.stderr and "available: " in unknown.stderr
    proc = seq2seq("preprocess", "--user-dir", folder, *preprocess_args(raw, tmp_path / "data-bin", tok_name)[1:])
    assert proc.returncode == 0, proc.stderr
    assert_lowercase_words(tmp_path / "data-bin")


def test_user_dir_on_score(runner, tmp_path, scratch_registries):
    folder, _, arch_name = write_user_dir(tmp_path)
    (tmp_path / "h").write_text("a b c\n", encoding="utf-8")
    result = invoke(runner, ["score", "--user-dir", folder, "-s", tmp_path / "h", "-r", tmp_path / "h"])
    assert result.exit_code == 0, result.output
    assert REGISTRIES["arch"].get(arch_name)()[0] == "transformer"  # the plugin was imported


def test_user_dir_errors(runner, tmp_path, scratch_registries):
    result = invoke(runner, ["list", "--user-dir", tmp_path / "missing", "arch"])
    assert result.exit_code == 2
    assert "Invalid value for '--user-dir'" in result.stderr and "missing: no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr

    clash = tmp_path / f"s2s_userdir_clash_{uuid.uuid4().hex[:8]}.py"
    clash.write_text(
        "from seq2seq_cli.registry import ARCHS\n"
        "@ARCHS.register('transformer_big')\n"
        "def mine():\n"
        "    return 'transformer', {}\n",
        encoding="utf-8",
    )
    result = invoke(runner, ["list", "--user-dir", clash, "arch"])
    assert result.exit_code == 2
    assert "arch 'transformer_big' is a built-in name (defined in seq2seq_cli.models.transformer)" in result.stderr


@pytest.mark.parametrize("kind", [None, *REGISTRIES])
def test_list_shows_every_component_with_its_fields(runner, kind, scratch_registries):
    from seq2seq_cli.config import describe_fields

    result = invoke(runner, ["list"] + ([kind] if kind else []))
    assert result.exit_code == 0, result.output
    kinds = [kind] if kind else list(REGISTRIES)
    assert [line.split(" ")[0] for line in result.stdout.splitlines() if line and not line[0].isspace()] == kinds
    for name in kinds:
        registry = REGISTRIES[name]
        for component in registry.names():
            entry = registry.get(component)
            assert f"\n  {component}  [{entry.__module__}.{entry.__qualname__}]" in result.stdout
            if name == "arch":
                assert f"      model: {entry()[0]}\n" in result.stdout
            else:
                for field_name, type_name, default, _ in describe_fields(entry.Config):
                    assert f"      {field_name}: {type_name} = {default!r}" in result.stdout


# ------------------------------------------------------------------ the example's model and decoding strategy

# The train_fixtures tiny model, as the plugin's arch (its LayerDrop rates stay the model's defaults, 0.2).
TINY_LAYERDROP = ["--arch", "transformer_layerdrop_small", *TINY_MODEL[2:]]
TRAIN_FAST = ["--max-update", "3", "--max-tokens", "256", "--threads", "1", "--device", "cpu", "--no-progress",
              "--no-epoch-checkpoints"]


@pytest.fixture(scope="module")
def listing(installed_plugin) -> str:
    """`seq2seq list` (every kind) in a fresh process."""
    proc = seq2seq("list")
    assert proc.returncode == 0, proc.stderr
    return "\n" + proc.stdout


@pytest.mark.parametrize("kind, line, fields", [
    ("model", "transformer_layerdrop  [seq2seq_plugin_example.models.LayerDropTransformer]",
     ["encoder_layerdrop: float = 0.2", "decoder_layerdrop: float = 0.2", "encoder_layers: int = 6"]),
    ("arch", "transformer_layerdrop_small  [seq2seq_plugin_example.models.transformer_layerdrop_small]",
     ["model: transformer_layerdrop", "encoder_layers = 3", "encoder_embed_dim = 256"]),
    ("decoding", "diverse-beam  [seq2seq_plugin_example.search.DiverseBeamSearch]",
     ["beam: int = 5", "diverse_beam_groups: int = 0", "diverse_beam_strength: float = 0.5"]),
])
def test_list_shows_the_installed_model_arch_and_strategy(listing, kind, line, fields):
    section = re.split(r"\n(?=\S)", listing.split(f"\n{kind}", 1)[1])[0]
    assert f"\n  {line}" in section
    block = re.split(r"\n  (?=\S)", section.split(line, 1)[1])[0]  # up to the next component
    for text in fields:
        assert text in block, (text, block)


def write_inputs(folder: Path) -> Path:
    path = folder / "input.txt"
    path.write_text("Alpha beta, gamma\nDELTA epsilon zeta,\n", encoding="utf-8")
    return path


def hypotheses(jsonl: str) -> list[list[tuple[str, float]]]:
    """(text, score) of each input's n-best list, from --output-format jsonl."""
    import json

    return [[(h["text"], h["score"]) for h in json.loads(line)["hypotheses"]] for line in jsonl.splitlines()]


def test_installed_plugin_tokenizer_model_and_strategy_from_the_cli(installed_plugin, runner, tmp_path):
    """preprocess --tokenizer lowercase-word, train --arch transformer_layerdrop_small, generate --strategy
    diverse-beam: all three found through the installed entry points."""
    import torch

    raw = write_corpus(tmp_path / "raw")
    data = tmp_path / "data-bin"
    ok(invoke(runner, [*preprocess_args(raw, data, "lowercase-word"), "--joined-dictionary"]))
    ok(invoke(runner, ["train", data, "--save-dir", tmp_path / "ck", *TINY_LAYERDROP, *TRAIN_FAST]))
    state = torch.load(tmp_path / "ck" / "checkpoint_last.pt", weights_only=True)
    assert (state["model"]["name"], state["model"]["arch"]) == ("transformer_layerdrop", "transformer_layerdrop_small")
    assert state["model"]["config"]["encoder_layerdrop"] == 0.2 and state["model"]["config"]["encoder_layers"] == 1

    src = write_inputs(tmp_path)
    gen = ["generate", "--path", tmp_path / "ck" / "checkpoint_last.pt", "--input", src, "--max-len-b", "6",
           "--beam", "4", "--nbest", "4", "--output-format", "jsonl", "--threads", "1", "--no-progress"]
    diverse = hypotheses(ok(invoke(runner, [*gen, "--strategy", "diverse-beam"])).stdout)
    beam = hypotheses(ok(invoke(runner, [*gen, "--strategy", "beam"])).stdout)
    one_group = ok(invoke(runner, [*gen, "--strategy", "diverse-beam", "--strategy-opt", "diverse_beam_groups=1"]))
    assert hypotheses(one_group.stdout) == beam  # one group is beam search, scores included
    assert [len(nbest) for nbest in diverse] == [4, 4] and diverse != beam
    for nbest in diverse:
        assert [s for _, s in nbest] == sorted((s for _, s in nbest), reverse=True)
        assert all(text == text.lower() for text, _ in nbest)  # the lowercase-word vocabulary
    # Beam search finds the highest-scoring hypothesis; diverse beam search trades score for variety.
    assert all(d[0][1] <= b[0][1] + 1e-6 for d, b in zip(diverse, beam))

    result = invoke(runner, [*gen, "--strategy", "diverse-beam", "--strategy-opt", "diverse_beam_groups=3"])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert ("Error: --beam 4 is not a multiple of --strategy-opt diverse_beam_groups=3; choose a beam of G x "
            "(hypotheses per group)") in result.stderr


def seq2seq_without_entry_points(*args: str | Path) -> subprocess.CompletedProcess:
    """`seq2seq ARGS` in a fresh process that sees no installed plugin (as on a machine without the package)."""
    code = ("import sys, seq2seq_cli.registry as r\n"
            "r.entry_points = lambda **kw: []\n"
            "from seq2seq_cli.cli import cli\n"
            "cli(sys.argv[1:], prog_name='seq2seq')\n")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_the_example_package_works_as_a_user_dir(tmp_path):
    """The same package folder, not installed: --user-dir makes its three components available to every command."""
    folder = tmp_path / f"s2s_userdir_{uuid.uuid4().hex[:8]}"  # any module name will do
    shutil.copytree(PLUGIN_SRC / "seq2seq_plugin_example", folder, ignore=shutil.ignore_patterns("__pycache__"))
    raw, data, ck = write_corpus(tmp_path / "raw"), tmp_path / "data-bin", tmp_path / "ck"

    def run(*args: str | Path) -> subprocess.CompletedProcess:
        proc = seq2seq_without_entry_points(args[0], "--user-dir", folder, *args[1:])
        assert proc.returncode == 0, (args[0], proc.stderr)
        return proc

    run(*preprocess_args(raw, data, "lowercase-word"), "--joined-dictionary")
    missing = seq2seq_without_entry_points("train", data, "--save-dir", ck, *TINY_LAYERDROP, *TRAIN_FAST)
    assert missing.returncode == 1  # without --user-dir (and not installed), the arch is unknown
    assert missing.stderr == ("Error: unknown arch 'transformer_layerdrop_small' (--arch); available: "
                              f"{', '.join(sorted(ARCHS._builtin_modules))}\n")
    run("train", data, "--save-dir", ck, *TINY_LAYERDROP, *TRAIN_FAST)
    proc = run("generate", "--path", ck / "checkpoint_last.pt", "--input", write_inputs(tmp_path), "--strategy",
               "diverse-beam", "--beam", "2", "--nbest", "2", "--max-len-b", "6", "--output-format", "jsonl")
    assert [len(nbest) for nbest in hypotheses(proc.stdout)] == [2, 2]
    assert_lowercase_words(data)


# Unit tests of the two components (through the installed package).

def test_diverse_beam_penalizes_the_tokens_of_earlier_groups(installed_plugin):
    import torch

    from seq2seq_plugin_example.search import DiverseBeamConfig, DiverseBeamSearch

    # One sentence, K = 2 rows in 2 groups; both rows prefer token 3 over token 4 by 0.4.
    lprobs = torch.tensor([[[-9.0, -9.0, -2.0, -0.1, -0.5], [-9.0, -9.0, -3.0, -0.2, -0.6]]]).log_softmax(-1)
    scores = torch.tensor([[-1.0, -2.0]])
    strategy = DiverseBeamSearch(DiverseBeamConfig(beam=2, diverse_beam_groups=2, diverse_beam_strength=1.0))
    cand_scores, tokens, beams = strategy.step(3, lprobs, scores)
    # Interleaved: group 0's best, group 1's best, group 0's second, group 1's second.
    assert beams.tolist() == [[0, 1, 0, 1]]
    assert tokens.tolist() == [[3, 4, 4, 3]]  # group 1 avoids token 3, which group 0 proposed
    expected = torch.stack([scores[0, 0] + lprobs[0, 0, 3], scores[0, 1] + lprobs[0, 1, 4],
                            scores[0, 0] + lprobs[0, 0, 4], scores[0, 1] + lprobs[0, 1, 3]])
    torch.testing.assert_close(cand_scores[0], expected)  # the model's log-probabilities, no penalty inside

    without = DiverseBeamSearch(DiverseBeamConfig(beam=2, diverse_beam_groups=2, diverse_beam_strength=0.0))
    assert without.step(3, lprobs, scores)[1].tolist() == [[3, 3, 4, 4]]


def test_diverse_beam_with_one_group_is_beam_search(installed_plugin):
    import torch

    from seq2seq_cli.decoding.beam import BeamConfig, BeamSearch
    from seq2seq_plugin_example.search import DiverseBeamConfig, DiverseBeamSearch

    gen = torch.Generator().manual_seed(0)
    lprobs = torch.randn(3, 4, 11, generator=gen).log_softmax(-1)
    scores = torch.randn(3, 4, generator=gen)
    one = DiverseBeamSearch(DiverseBeamConfig(beam=4, diverse_beam_groups=1))
    for step in (0, 2):
        for got, want in zip(one.step(step, lprobs, scores), BeamSearch(BeamConfig(beam=4)).step(step, lprobs, scores)):
            torch.testing.assert_close(got, want)
    # G = K by default: at step 0 every group starts from the same BOS row, and each picks another first token.
    first = DiverseBeamSearch(DiverseBeamConfig(beam=4, diverse_beam_strength=100.0)).step(0, lprobs, scores)[1]
    assert all(len(set(row[:4])) == 4 for row in first.tolist())


@pytest.mark.parametrize("options, message", [
    ({"beam": 0}, "--beam 0: must be at least 1"),
    ({"beam": 4, "diverse_beam_groups": -1}, "--strategy-opt diverse_beam_groups=-1: must be 0"),
    ({"beam": 5, "diverse_beam_groups": 2}, "--beam 5 is not a multiple of --strategy-opt diverse_beam_groups=2"),
    ({"diverse_beam_strength": -0.5}, "--strategy-opt diverse_beam_strength=-0.5: must not be negative"),
])
def test_diverse_beam_config_errors(installed_plugin, options, message):
    from seq2seq_cli.errors import ConfigError
    from seq2seq_plugin_example.search import DiverseBeamConfig

    with pytest.raises(ConfigError, match=re.escape(message)):
        DiverseBeamConfig(**options)


def tiny_layerdrop(p: float):
    from seq2seq_plugin_example.models import LayerDropTransformer, LayerDropTransformerConfig

    cfg = LayerDropTransformerConfig(encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_layers=4,
                                     encoder_attention_heads=2, decoder_embed_dim=16, decoder_ffn_embed_dim=32,
                                     decoder_layers=4, decoder_attention_heads=2, dropout=0.0,
                                     encoder_layerdrop=p, decoder_layerdrop=p)
    return cfg, LayerDropTransformer.build(cfg, 13, 13, pad_id=1)


def test_layerdrop_skips_layers_in_training_only(installed_plugin):
    import dataclasses

    import torch

    from seq2seq_cli.models.transformer import TransformerConfig, TransformerModel

    torch.manual_seed(0)
    cfg, model = tiny_layerdrop(0.5)
    calls = []
    for layer in [stack.layers[i] for stack in (model.encoder, model.decoder) for i in range(4)]:  # all layers
        layer.register_forward_hook(lambda *_: calls.append(1))
    src, tgt = torch.randint(4, 13, (2, 5)), torch.randint(4, 13, (2, 6))
    model.train()
    for _ in range(10):
        model(src, tgt)
    assert 20 < len(calls) < 60  # 80 layer calls without LayerDrop; about half are skipped
    calls.clear()
    model.eval()
    out = model(src, tgt)
    assert len(calls) == 8
    # In evaluation mode it is the Transformer: same parameter names, same outputs.
    plain_cfg = TransformerConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(TransformerConfig)})
    plain = TransformerModel.build(plain_cfg, 13, 13, pad_id=1).eval()
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain(src, tgt), out)


def test_layerdrop_rate_is_checked(installed_plugin):
    from seq2seq_cli.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^encoder_layerdrop=1.0: must be in \[0, 1\)$"):
        tiny_layerdrop(1.0)
