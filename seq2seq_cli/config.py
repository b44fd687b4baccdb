"""Helpers for the config dataclasses: one dataclass per component, each default defined once, in its field.

- `to_dict` gives JSON-safe primitives (Path -> str, tuples -> lists), fit for config.json and for checkpoints that
  load with `torch.load(weights_only=True)`.
- `from_dict` is strict: an unknown key is an error that lists the valid fields; a missing key takes its default
  (that is how newer code reads configs written by older versions).
- `apply_overrides` applies `key=value` strings (from `--model-opt` and friends), coerced by the field's type.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
import types
import typing
from pathlib import Path
from typing import Any, Iterable, TypeVar

from seq2seq_cli.errors import ConfigError

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    """Return a dataclass instance as a dict of JSON-safe primitives."""
    return {f.name: _primitive(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _primitive(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_primitive(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _primitive(v) for k, v in value.items()}
    return value


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a dataclass's fields (works with `from __future__ import annotations`)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build dataclass `cls` from `data`; unknown keys or values of the wrong type raise ConfigError naming `source`.

    JSON values are converted back to the field's type where JSON loses it (list -> tuple, str -> Path, int ->
    float), so `from_dict(cls, to_dict(cfg)) == cfg`.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"{source}: unknown field(s) {', '.join(unknown)} for {cls.__name__}; valid fields: {', '.join(names)}"
        )
    types_ = field_types(cls)
    kwargs = {k: _from_json_value(types_[k], v, f"{source}: {cls.__name__}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def _from_json_value(tp: Any, value: Any, where: str) -> Any:
    """`value` (from JSON) as type `tp`; ConfigError naming `where` when it does not fit."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or isinstance(tp, typing.TypeVar):
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _from_json_value(arg, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} = {value!r}: expected {type_name(tp)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where} = {value!r}: choose one of {', '.join(map(repr, args))}")
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value, where)
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        items = [_from_json_value(_item_type(tp, i, len(value), where), v, where) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict and isinstance(value, dict):
        return value
    if _fits(tp, value):
        if tp in (float, Path, str):  # JSON has no Path; a click path option may give a Path for a str field
            return tp(value)
        return value
    raise ConfigError(f"{where} = {value!r}: expected {type_name(tp)}")


def _fits(tp: Any, value: Any) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if tp in (Path, str):
        return isinstance(value, (str, Path))
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # a type we do not check (e.g. Callable): accept as is


def _item_type(tp: Any, index: int, length: int, where: str) -> Any:
    """Element type `index` of a tuple/list type; fixed-length tuples must have the right length."""
    args = typing.get_args(tp)
    if not args:
        return Any
    if typing.get_origin(tp) is list or (len(args) == 2 and args[1] is Ellipsis):
        return args[0]
    if length != len(args):
        raise ConfigError(f"{where}: expected {len(args)} values ({type_name(tp)}), got {length}")
    return args[index]


def type_name(tp: Any) -> str:
    """A readable name of a type hint: `int`, `int | None`, `tuple[float, float]`, `Literal['a', 'b']`."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("pathlib.", "")


def coerce(tp: Any, text: str, name: str) -> Any:
    """Turn the string `text` into a value of type `tp` for field `name`; ConfigError when it does not parse."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        non_none = [a for a in args if a is not type(None)]
        if text.lower() in ("none", "null", "") and len(non_none) < len(args):
            return None
        return coerce(non_none[0], text, name)
    if origin is typing.Literal:
        for choice in args:  # compare as text: Literal[1, 2] takes "1"
            if str(choice) == text:
                return choice
        raise ConfigError(f"{name}={text!r}: choose one of {', '.join(map(str, args))}")
    try:
        if tp is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
        if tp is Path:
            return Path(text)
        if origin in (tuple, list):
            # Accept "[0.9, 0.98]", "(0.9, 0.98)" (fairseq's --adam-betas spelling), "0.9,0.98" and "0.9 0.98".
            parts = text.strip().strip("()[]").replace(",", " ").split()
            items = [coerce(_item_type(tp, i, len(parts), name), str(p), name) for i, p in enumerate(parts)]
            return tuple(items) if origin is tuple else items
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected a value of type {type_name(tp)}") from None
    return text


def override_key(item: str) -> str:
    """The field name of a `key=value` override: dashes or underscores, leading dashes dropped."""
    return item.partition("=")[0].strip().lstrip("-").replace("-", "_")


def apply_overrides(cfg: T, overrides: Iterable[str], flag: str = "--model-opt") -> T:
    """Return a copy of `cfg` with `key=value` overrides applied; keys may use dashes or underscores."""
    types_ = field_types(type(cfg))
    changes: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        key, value = override_key(item), item.split("=", 1)[1]
        if key not in types_:
            raise ConfigError(
                f"{flag} {item!r}: {type(cfg).__name__} has no field {key!r}; valid fields: {', '.join(types_)}"
            )
        changes[key] = coerce(types_[key], value.strip(), f"{flag} {key}")
    return dataclasses.replace(cfg, **changes)


def load_json(path: Path) -> dict[str, Any]:
    """Read a JSON object from `path`, with a ConfigError naming the file on failure."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def describe_fields(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type name, default, help) for each field, for `seq2seq list`; help comes from field metadata."""
    rows = []
    types_ = field_types(cls)
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        rows.append((f.name, type_name(types_[f.name]), default, f.metadata.get("help", "")))
    return rows
