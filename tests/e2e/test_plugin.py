"""Plugins through the CLI: the example package pip-installed (entry points), and --user-dir folders.

The example plugin is installed into the test environment with `pip install --no-deps --no-build-isolation` from a
copy in a temporary folder (so no build/ or *.egg-info lands in the checkout); when the installed copy already
matches examples/plugin, the install is skipped. It stays installed afterwards: tests elsewhere must not assume
that `lowercase-word` is absent from the installed entry points.
"""
from __future__ import annotations

import configparser
import importlib
import shutil
import subprocess
import sys
import uuid
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from seq2seq_cli.registry import REGISTRIES, TOKENIZERS
from tests.conftest import REPO, invoke

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
