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
    """Build dataclass `cls` from `data`; unknown keys raise ConfigError naming `source` and the valid fields."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"{source}: unknown field(s) {', '.join(unknown)} for {cls.__name__}; valid fields: {', '.join(names)}"
        )
    types = field_types(cls)
    kwargs = {k: _from_json_value(types[k], v) for k, v in data.items()}
    return cls(**kwargs)


def _from_json_value(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)
    return value


def coerce(tp: Any, text: str, name: str) -> Any:
    """Turn the string `text` into a value of type `tp` for field `name`; ConfigError when it does not parse."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or str(origin) == "types.UnionType":
        non_none = [a for a in args if a is not type(None)]
        if text.lower() in ("none", "null", "") and len(non_none) < len(args):
            return None
        return coerce(non_none[0], text, name)
    if origin is typing.Literal:
        if text not in args:
            raise ConfigError(f"{name}={text!r}: choose one of {', '.join(map(str, args))}")
        return text
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
        if origin is tuple:
            parts = json.loads(text) if text.startswith("[") else [p for p in text.replace(",", " ").split()]
            return tuple(coerce(args[0], str(p), name) for p in parts)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected a value of type {getattr(tp, '__name__', tp)}") from None
    return text


def apply_overrides(cfg: T, overrides: Iterable[str], flag: str = "--model-opt") -> T:
    """Return a copy of `cfg` with `key=value` overrides applied; keys may use dashes or underscores."""
    types = field_types(type(cfg))
    changes: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        key = key.strip().lstrip("-").replace("-", "_")
        if key not in types:
            raise ConfigError(
                f"{flag} {item!r}: {type(cfg).__name__} has no field {key!r}; valid fields: {', '.join(types)}"
            )
        changes[key] = coerce(types[key], value.strip(), f"{flag} {key}")
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
    types = field_types(cls)
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        tp = types[f.name]
        rows.append((f.name, getattr(tp, "__name__", str(tp).replace("typing.", "")), default, f.metadata.get("help", "")))
    return rows
