"""The registry: decorator registration, duplicates, unknown names, entry points (listed lazily) and --user-dir."""
from __future__ import annotations

import dataclasses
import sys
import uuid
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from seq2seq_cli import registry as registry_module
from seq2seq_cli.errors import ConfigError, UnknownComponentError
from seq2seq_cli.registry import TOKENIZERS, Registry, import_user_dir
from seq2seq_cli.tokenization.base import Tokenizer

GROUP = "seq2seq_cli.test_tokenizers"
BASE = "seq2seq_cli.tokenization.base:Tokenizer"
REG: Registry | None = None  # set by a test; a plugin module imports it to register itself


class GoodTokenizer(Tokenizer):
    @dataclasses.dataclass(frozen=True)
    class Config:
        size: int = 3


class OtherTokenizer(Tokenizer):
    @dataclasses.dataclass(frozen=True)
    class Config:
        pass


@pytest.fixture
def no_entry_points(monkeypatch):
    """No installed plugin is visible (an installed example plugin would change the lists)."""
    monkeypatch.setattr(registry_module, "entry_points", lambda group=None, name=None: [])


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Install a list of EntryPoint objects as the only ones `registry.entry_points` sees."""
    installed: list[EntryPoint] = []

    def entry_points(group=None, name=None):
        return [ep for ep in installed if ep.group == group and (name is None or ep.name == name)]

    monkeypatch.setattr(registry_module, "entry_points", entry_points)
    return installed


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    """A folder on sys.path for plugin modules; the modules imported from it are forgotten afterwards."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("s2s_test_"):
            del sys.modules[name]


def unique(prefix: str = "s2s_test_") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def write_plugin_module(folder: Path, module: str, class_name: str = "Tok") -> None:
    """A module defining a Tokenizer subclass (without registering it): what an entry point points at."""
    (folder / f"{module}.py").write_text(
        "import dataclasses\n"
        "from seq2seq_cli.tokenization.base import Tokenizer\n"
        f"class {class_name}(Tokenizer):\n"
        "    @dataclasses.dataclass\n"
        "    class Config:\n"
        "        width: int = 7\n",
        encoding="utf-8",
    )


def test_decorator_registers_and_get_returns_the_class(no_entry_points):
    reg = Registry("tokenizer", GROUP, BASE, {})
    returned = reg.register("good")(GoodTokenizer)
    assert returned is GoodTokenizer
    assert reg.get("good") is GoodTokenizer
    assert reg.names() == ["good"]
    assert "good" in reg and "other" not in reg


def test_duplicate_name_fails_naming_the_first_owner(no_entry_points):
    reg = Registry("tokenizer", GROUP, BASE, {})
    reg.register("good")(GoodTokenizer)
    with pytest.raises(ConfigError, match=rf"tokenizer 'good' is already registered \(by {__name__}\)"):
        reg.register("good")(OtherTokenizer)
    assert reg.get("good") is GoodTokenizer


def test_plugin_claiming_a_builtin_name_fails_before_the_builtin_is_imported():
    # The real registry: 'bpe' belongs to seq2seq_cli.tokenization.hf; this module may not take it.
    message = r"tokenizer 'bpe' is a built-in name \(defined in seq2seq_cli.tokenization.hf\)"
    with pytest.raises(ConfigError, match=message):
        TOKENIZERS.register("bpe")(GoodTokenizer)


def test_builtin_module_may_register_its_own_name(no_entry_points):
    reg = Registry("tokenizer", GROUP, BASE, {"good": __name__})
    reg.register("good")(GoodTokenizer)  # GoodTokenizer.__module__ is this module: allowed
    assert reg.get("good") is GoodTokenizer


def test_wrong_base_class_and_missing_config_fail_at_registration():
    reg = Registry("tokenizer", GROUP, BASE, {})

    class NotATokenizer:
        Config = GoodTokenizer.Config

    class NoConfig(Tokenizer):
        pass

    with pytest.raises(ConfigError, match="must subclass seq2seq_cli.tokenization.base.Tokenizer"):
        reg.register("x")(NotATokenizer)
    with pytest.raises(ConfigError, match="must define a dataclass `Config`"):
        reg.register("y")(NoConfig)
    plain = Registry("arch", GROUP, None, {}, needs_config=False)
    assert plain.register("fn")(len) is len  # archs are plain functions: no base, no Config


def test_unknown_name_lists_what_is_available(no_entry_points):
    reg = Registry("tokenizer", GROUP, BASE, {"builtin": "no.such.module"})
    reg.register("good")(GoodTokenizer)
    with pytest.raises(UnknownComponentError,
                       match=r"unknown tokenizer 'nope' \(--tokenizer\); available: builtin, good$"):
        reg.get("nope", flag="--tokenizer")


def test_unknown_name_in_a_real_registry_lists_the_builtins(no_entry_points):
    with pytest.raises(UnknownComponentError, match=r"^unknown tokenizer 'sentencepiece'; available: ") as info:
        TOKENIZERS.get("sentencepiece")
    # Plugins that earlier tests in this process registered may be listed too; every built-in must be.
    available = str(info.value).split("available: ", 1)[1].split(", ")
    assert {"bpe", "bytelevel-bpe", "char", "none", "unigram", "wordpiece"} <= set(available)
    assert available == sorted(available)


def test_entry_points_are_listed_without_import_and_loaded_only_when_asked(fake_entry_points, module_dir):
    wanted, other = unique(), unique()
    write_plugin_module(module_dir, wanted)
    write_plugin_module(module_dir, other)
    fake_entry_points += [EntryPoint("ep-wanted", f"{wanted}:Tok", GROUP),
                          EntryPoint("ep-other", f"{other}:Tok", GROUP)]
    reg = Registry("tokenizer", GROUP, BASE, {})

    assert reg.names() == ["ep-other", "ep-wanted"]
    assert wanted not in sys.modules and other not in sys.modules  # listing imported nothing

    cls = reg.get("ep-wanted")
    assert cls.__module__ == wanted and cls.__name__ == "Tok"
    assert wanted in sys.modules and other not in sys.modules  # only the requested plugin was imported
    assert reg.get("ep-wanted") is cls


def test_entry_point_that_registers_itself_is_not_registered_twice(fake_entry_points, module_dir):
    module = unique()
    (module_dir / f"{module}.py").write_text(
        "import dataclasses\n"
        "from seq2seq_cli.tokenization.base import Tokenizer\n"
        f"from {__name__} import REG\n"
        "@REG.register('self-reg')\n"
        "class Tok(Tokenizer):\n"
        "    Config = dataclasses.make_dataclass('Config', [])\n",
        encoding="utf-8",
    )
    fake_entry_points.append(EntryPoint("self-reg", f"{module}:Tok", GROUP))
    global REG
    REG = Registry("tokenizer", GROUP, BASE, {})
    cls = REG.get("self-reg")  # registered by the module's decorator; registering it again would raise
    assert cls.__module__ == module and REG.names() == ["self-reg"]


def test_entry_point_claiming_a_builtin_name_fails(fake_entry_points, module_dir):
    builtin, plugin = unique(), unique()
    write_plugin_module(module_dir, builtin)
    write_plugin_module(module_dir, plugin)
    fake_entry_points.append(EntryPoint("taken", f"{plugin}:Tok", GROUP))
    reg = Registry("tokenizer", GROUP, BASE, {"taken": builtin})
    with pytest.raises(ConfigError, match=rf"'taken' is a built-in name, but entry point '{plugin}:Tok'"):
        reg.get("taken")
    assert plugin not in sys.modules


def test_two_entry_points_with_one_name_fail(fake_entry_points, module_dir):
    first, second = unique(), unique()
    write_plugin_module(module_dir, first)
    write_plugin_module(module_dir, second)
    fake_entry_points += [EntryPoint("same", f"{first}:Tok", GROUP), EntryPoint("same", f"{second}:Tok", GROUP)]
    reg = Registry("tokenizer", GROUP, BASE, {})
    assert reg.names() == ["same"]
    with pytest.raises(ConfigError, match="claimed by several entry points"):
        reg.get("same")


def test_entry_point_of_the_wrong_type_fails(fake_entry_points, module_dir):
    module = unique()
    (module_dir / f"{module}.py").write_text("class NotATokenizer:\n    pass\n", encoding="utf-8")
    fake_entry_points.append(EntryPoint("bad", f"{module}:NotATokenizer", GROUP))
    reg = Registry("tokenizer", GROUP, BASE, {})
    with pytest.raises(ConfigError, match="tokenizer 'bad'.*must subclass"):
        reg.get("bad")


@pytest.fixture
def scratch_tokenizers():
    """Plugin registrations into the real TOKENIZERS made by a test are undone afterwards (built-ins stay: their
    module is imported once per process and could not register again)."""
    before = set(TOKENIZERS._entries)
    yield TOKENIZERS
    for name in set(TOKENIZERS._entries) - before - set(TOKENIZERS._builtin_modules):
        del TOKENIZERS._entries[name]


def _plugin_source(name: str) -> str:
    return (
        "import dataclasses\n"
        "from seq2seq_cli.registry import TOKENIZERS\n"
        "from seq2seq_cli.tokenization.base import Tokenizer\n"
        f"@TOKENIZERS.register({name!r})\n"
        "class UserTok(Tokenizer):\n"
        "    @dataclasses.dataclass\n"
        "    class Config:\n"
        "        depth: int = 2\n"
    )


def test_import_user_dir_file(tmp_path, scratch_tokenizers, module_dir):
    name, module = unique("user-file-"), unique()
    path = tmp_path / f"{module}.py"
    path.write_text(_plugin_source(name), encoding="utf-8")
    import_user_dir(path)
    assert scratch_tokenizers.get(name).__module__ == module
    import_user_dir(path)  # a second import of the same path is a no-op, not a duplicate registration


def test_import_user_dir_package_with_relative_imports(tmp_path, scratch_tokenizers, module_dir):
    name, package = unique("user-pkg-"), unique()
    folder = tmp_path / "plugins" / package
    folder.mkdir(parents=True)
    (folder / "tok.py").write_text(_plugin_source(name), encoding="utf-8")
    (folder / "__init__.py").write_text("from . import tok  # noqa: F401\n", encoding="utf-8")
    import_user_dir(folder)
    cls = scratch_tokenizers.get(name)
    assert cls.__module__ == f"{package}.tok"
    assert dataclasses.fields(cls.Config)[0].name == "depth"


def test_import_user_dir_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"--user-dir .*missing: no such file or folder"):
        import_user_dir(tmp_path / "missing")
    (tmp_path / "no_init").mkdir()
    with pytest.raises(ConfigError, match="a plugin folder needs an __init__.py"):
        import_user_dir(tmp_path / "no_init")
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a .py file or a package folder"):
        import_user_dir(tmp_path / "notes.txt")
    (tmp_path / "json.py").write_text("raise RuntimeError('must not run')\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="a module named 'json' is already imported; rename your plugin"):
        import_user_dir(tmp_path / "json.py")
    assert sys.modules["json"].__file__ != str(tmp_path / "json.py")


def test_import_user_dir_that_fails_leaves_no_half_imported_module(tmp_path):
    module = unique()
    (tmp_path / f"{module}.py").write_text("raise RuntimeError('broken plugin')\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="broken plugin"):
        import_user_dir(tmp_path / f"{module}.py")
    assert module not in sys.modules
