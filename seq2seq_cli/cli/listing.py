"""`seq2seq list [KIND]`: every registered component (built-in, installed plugin, --user-dir) with its config fields.

Listing imports every component it shows (that is how their Config dataclasses are found), so a component whose
module fails to import fails here too, with its traceback: a broken plugin should be seen, not hidden.
"""
from __future__ import annotations

from typing import Any

import click

from seq2seq_cli.cli.options import user_dir_option
from seq2seq_cli.registry import REGISTRIES  # light: imports no component


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("kind", required=False, type=click.Choice(list(REGISTRIES)), metavar="[KIND]")
@user_dir_option
def list_components(kind: str | None) -> None:
    """List the components of every registry (or of KIND) with their config fields, types and defaults.

    KIND is one of: tokenizer, model, arch, decoding, optimizer, lr-scheduler, criterion. Archs are presets: they
    show the model they build and the values they set. Plugins (installed or --user-dir) are listed too.
    """
    kinds = [kind] if kind else list(REGISTRIES)
    for i, name in enumerate(kinds):
        if i:
            click.echo("")
        for line in describe_registry(name, REGISTRIES[name]):
            click.echo(line)


def describe_registry(kind: str, registry: Any) -> list[str]:
    """Text lines describing every component of `registry` (each imported to read its Config)."""
    lines = [f"{kind} (plugins: entry-point group {registry.group})"]
    for name in registry.names():
        entry = registry.get(name)
        lines.append(f"  {name}  [{_origin(entry)}]{_summary(entry)}")
        if kind == "arch":
            lines.extend(_describe_arch(entry))
        elif hasattr(entry, "Config"):
            lines.extend(_describe_config(entry.Config))
    return lines


def _origin(entry: Any) -> str:
    return f"{getattr(entry, '__module__', '?')}.{getattr(entry, '__qualname__', type(entry).__name__)}"


def _summary(entry: Any) -> str:
    doc = (getattr(entry, "__doc__", None) or "").strip()
    return f" {doc.splitlines()[0]}" if doc else ""


def _describe_config(config_cls: type) -> list[str]:
    from seq2seq_cli.config import describe_fields

    rows = describe_fields(config_cls)
    if not rows:
        return ["      (no options)"]
    lines = []
    for field_name, type_name, default, help_text in rows:
        line = f"      {field_name}: {type_name} = {default!r}"
        lines.append(f"{line:<60} {help_text}".rstrip())
    return lines


def _describe_arch(arch: Any) -> list[str]:
    model_name, values = arch()
    lines = [f"      model: {model_name}"]
    lines.extend(f"      {key} = {value!r}" for key, value in values.items())
    return lines
