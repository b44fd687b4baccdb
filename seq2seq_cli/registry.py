"""One small registry per kind of component: tokenizers, models, archs, decoding strategies, optimizers, LR
schedulers and criteria.

- Built-ins register with `@REGISTRY.register("name")` in their own module; the registry knows which module holds
  which built-in name and imports only that module, on first use (so `seq2seq --help` imports nothing heavy).
- Other packages add components through entry points (group `seq2seq_cli.<kind>s`, e.g. `seq2seq_cli.models`).
  Entry points are listed without importing them; only the requested one is loaded.
- `--user-dir PATH` imports a local plugin module or package, which registers with the same decorator.
- A duplicate name fails at registration, including a plugin that claims a built-in's name. An unknown name fails
  with the list of what is available.

Base classes are given as "module:Class" strings and resolved on registration, so this module imports no torch.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from seq2seq_cli.errors import ConfigError, UnknownComponentError


class Registry:
    """Maps names to component classes (or factory functions) of one kind."""

    def __init__(self, kind: str, group: str, base: str | None, builtin_modules: dict[str, str],
                 needs_config: bool = True) -> None:
        self.kind = kind
        self.group = group  # entry-point group for third-party packages
        self._base = base  # "module:Class" every entry must subclass, or None for plain callables
        self._builtin_modules = builtin_modules  # name -> module whose import registers it
        self._needs_config = needs_config
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator that adds a class (or function) under `name`; a duplicate name raises ConfigError."""

        def add(obj: Any) -> Any:
            # The built-in check comes first so that the message does not depend on whether the built-in's
            # module happens to be imported already.
            builtin = self._builtin_modules.get(name)
            if builtin is not None and getattr(obj, "__module__", None) != builtin:
                raise ConfigError(
                    f"{self.kind} {name!r} is a built-in name (defined in {builtin}); "
                    f"{getattr(obj, '__module__', obj)} must register under another name"
                )
            if name in self._entries:
                owner = getattr(self._entries[name], "__module__", "?")
                raise ConfigError(f"{self.kind} {name!r} is already registered (by {owner}); choose another name")
            self._check(name, obj)
            self._entries[name] = obj
            return obj

        return add

    def _check(self, name: str, obj: Any) -> None:
        if self._base is not None:
            module, _, cls_name = self._base.partition(":")
            base = getattr(importlib.import_module(module), cls_name)
            if not (isinstance(obj, type) and issubclass(obj, base)):
                raise ConfigError(f"{self.kind} {name!r}: {obj!r} must subclass {base.__module__}.{base.__name__}")
        if self._needs_config and not dataclasses.is_dataclass(getattr(obj, "Config", None)):
            raise ConfigError(f"{self.kind} {name!r}: {obj!r} must define a dataclass `Config`")

    def names(self) -> list[str]:
        """Every available name: built-in, registered, and installed entry points. Imports nothing."""
        plugins = {ep.name for ep in entry_points(group=self.group)}
        return sorted(set(self._entries) | set(self._builtin_modules) | plugins)

    def get(self, name: str, flag: str | None = None) -> Any:
        """Return the entry called `name`, importing its module if needed; unknown names list the choices."""
        if name not in self._entries:
            eps = list(entry_points(group=self.group, name=name))
            if name in self._builtin_modules:
                if eps:  # an installed package claims a built-in's name: as a duplicate, that is an error
                    raise ConfigError(
                        f"{self.kind} {name!r} is a built-in name, but entry point {eps[0].value!r} "
                        f"(group {self.group}) claims it too; uninstall that package or rename its entry point"
                    )
                importlib.import_module(self._builtin_modules[name])
            elif eps:
                self._load_entry_point(name, eps)
        if name not in self._entries:
            where = f" ({flag})" if flag else ""
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}{where}; available: {', '.join(self.names())}"
            )
        return self._entries[name]

    def _load_entry_point(self, name: str, eps: list[Any]) -> None:
        # Two installed packages under one name would make the choice depend on install order.
        if len({ep.value for ep in eps}) > 1:
            raise ConfigError(
                f"{self.kind} {name!r} is claimed by several entry points in group {self.group}: "
                f"{', '.join(sorted(ep.value for ep in eps))}; uninstall all but one"
            )
        obj = eps[0].load()  # only this plugin is imported
        if name not in self._entries:  # it may have used @register itself
            self.register(name)(obj)

    def __contains__(self, name: str) -> bool:
        return name in self.names()


TOKENIZERS = Registry("tokenizer", "seq2seq_cli.tokenizers", "seq2seq_cli.tokenization.base:Tokenizer", {
    "bpe": "seq2seq_cli.tokenization.hf",
    "unigram": "seq2seq_cli.tokenization.hf",
    "wordpiece": "seq2seq_cli.tokenization.hf",
    "bytelevel-bpe": "seq2seq_cli.tokenization.hf",
    "char": "seq2seq_cli.tokenization.hf",
    "none": "seq2seq_cli.tokenization.hf",
})
MODELS = Registry("model", "seq2seq_cli.models", "seq2seq_cli.models.base:Seq2SeqModel", {
    "transformer": "seq2seq_cli.models.transformer",
    "s2t_transformer": "seq2seq_cli.models.s2t_transformer",
    "transformer_lm": "seq2seq_cli.models.transformer_lm",
})
# An arch is a named preset: a function returning (model name, {config field: value}), as fairseq's --arch.
ARCHS = Registry("arch", "seq2seq_cli.archs", None, {
    "transformer": "seq2seq_cli.models.transformer",
    "transformer_small": "seq2seq_cli.models.transformer",
    "transformer_iwslt_de_en": "seq2seq_cli.models.transformer",
    "transformer_big": "seq2seq_cli.models.transformer",
    "s2t_transformer": "seq2seq_cli.models.s2t_transformer",
    "s2t_transformer_s": "seq2seq_cli.models.s2t_transformer",
    "s2t_transformer_xs": "seq2seq_cli.models.s2t_transformer",
    "transformer_lm": "seq2seq_cli.models.transformer_lm",
    "transformer_lm_small": "seq2seq_cli.models.transformer_lm",
}, needs_config=False)
DECODING = Registry("decoding strategy", "seq2seq_cli.decoding", "seq2seq_cli.decoding.base:DecodingStrategy", {
    "greedy": "seq2seq_cli.decoding.greedy",
    "beam": "seq2seq_cli.decoding.beam",
    "sampling": "seq2seq_cli.decoding.sampling",
})
OPTIMIZERS = Registry("optimizer", "seq2seq_cli.optimizers", None, {
    "adam": "seq2seq_cli.training.optim",
}, needs_config=True)
LR_SCHEDULERS = Registry("lr scheduler", "seq2seq_cli.lr_schedulers", None, {
    "inverse_sqrt": "seq2seq_cli.training.lr_scheduler",
    "fixed": "seq2seq_cli.training.lr_scheduler",
    "cosine": "seq2seq_cli.training.lr_scheduler",
    "polynomial_decay": "seq2seq_cli.training.lr_scheduler",
    "reduce_lr_on_plateau": "seq2seq_cli.training.lr_scheduler",
}, needs_config=True)
CRITERIA = Registry("criterion", "seq2seq_cli.criteria", None, {
    "label_smoothed_cross_entropy": "seq2seq_cli.training.loss",
    "cross_entropy": "seq2seq_cli.training.loss",
    "label_smoothed_cross_entropy_with_ctc": "seq2seq_cli.training.loss",
}, needs_config=True)

REGISTRIES: dict[str, Registry] = {
    "tokenizer": TOKENIZERS,
    "model": MODELS,
    "arch": ARCHS,
    "decoding": DECODING,
    "optimizer": OPTIMIZERS,
    "lr-scheduler": LR_SCHEDULERS,
    "criterion": CRITERIA,
}

_imported_user_dirs: set[Path] = set()


def import_user_dir(path: str | Path) -> None:
    """Import a local plugin module (a .py file) or package (a folder with __init__.py), as fairseq's --user-dir.

    Importing it runs its `@REGISTRY.register(...)` decorators. Importing the same path twice is a no-op.
    """
    path = Path(path).expanduser().resolve()
    if path in _imported_user_dirs:
        return
    if not path.exists():
        raise ConfigError(f"--user-dir {path}: no such file or folder")
    if path.is_dir():
        init = path / "__init__.py"
        if not init.exists():
            raise ConfigError(f"--user-dir {path}: a plugin folder needs an __init__.py")
        name, location = path.name, init
        search = [str(path)]
    elif path.suffix == ".py":
        name, location, search = path.stem, path, None
    else:
        raise ConfigError(f"--user-dir {path}: expected a .py file or a package folder")
    if name in sys.modules:  # importing over it would replace that module (a stdlib one, say) for everyone
        raise ConfigError(f"--user-dir {path}: a module named {name!r} is already imported; rename your plugin")
    spec = importlib.util.spec_from_file_location(name, location, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise ConfigError(f"--user-dir {path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    _imported_user_dirs.add(path)
