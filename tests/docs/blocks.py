"""Fenced blocks of the Markdown docs, their docs-test markers, and the seq2seq commands inside shell blocks.

The convention these functions implement is written at the top of tests/docs/test_doc_blocks.py.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[2]
SHELL_LANGS = ("bash", "sh")
SKIP_REASONS = ("gpu", "multi-node", "root", "long", "install", "network", "audio")
ARTIFACTS = ("data-bin", "checkpoints")
MARKER = re.compile(r"^\s*<!--\s*docs-test:(.*?)-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,})(.*)$")

# What `cap` does to a block's commands (tests/docs/shim.py applies it); see the module docstring of the tier.
CAP_MAX_UPDATE = 3
TINY_MODEL = ["--encoder-layers", "1", "--decoder-layers", "1", "--encoder-embed-dim", "32", "--decoder-embed-dim",
              "32", "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64", "--encoder-attention-heads",
              "2", "--decoder-attention-heads", "2"]
SHORT_OUTPUT = ["--max-len-a", "0", "--max-len-b", "10"]
CAP_CHECK_LINES = 10  # export's parity check


class DocTierError(Exception):
    """A block or marker that breaks the convention; the message names the file and line."""


@dataclass
class Marker:
    skip: str | None = None  # the reason, e.g. "gpu: needs CUDA devices"
    needs: list[str] = field(default_factory=list)
    cap: bool = False
    file: str | None = None  # the block is this file's content (relative to the session folder)


@dataclass
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: Marker

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.lang in SHELL_LANGS

    @property
    def runs(self) -> bool:
        """Run by the tier: a shell or Python block not marked `skip` or `file`."""
        return (self.is_shell or self.lang == "python") and not self.marker.skip and not self.marker.file


def parse_marker(text: str, where: str) -> Marker:
    """`needs A B` / `cap` / `file PATH`, separated by `;`; `skip REASON` comes last and takes the rest."""
    marker = Marker()
    head, skip, reason = text.partition("skip ")
    parts = [p.strip() for p in head.split(";") if p.strip()] + ([f"skip {reason}"] if skip else [])
    for part in parts:
        word, _, rest = part.partition(" ")
        if word == "skip":
            kind = rest.split(":")[0].strip()
            if kind not in SKIP_REASONS:
                raise DocTierError(f"{where}: skip reason {kind!r} is not one of {', '.join(SKIP_REASONS)} "
                                   "(write `skip gpu: why`)")
            marker.skip = rest.strip()
        elif word == "needs":
            marker.needs = rest.split()
            unknown = [a for a in marker.needs if a not in ARTIFACTS]
            if unknown or not marker.needs:
                raise DocTierError(f"{where}: `needs` takes some of {', '.join(ARTIFACTS)}, got {rest!r}")
        elif word == "cap" and not rest:
            marker.cap = True
        elif word == "file" and rest and " " not in rest.strip() and not Path(rest.strip()).is_absolute():
            marker.file = rest.strip()
        else:
            raise DocTierError(f"{where}: unknown docs-test marker {part!r} (skip REASON, needs ARTIFACT..., cap, file PATH)")
    return marker


def read_blocks(doc: Path) -> list[Block]:
    """Every fenced block of `doc`, with the marker on the line above it (if any)."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks, info = m.groups()
        where = f"{doc.relative_to(REPO)}:{i + 1}"
        end = i + 1
        while end < len(lines) and not re.match(rf"^\s*{ticks}\s*$", lines[end]):
            end += 1
        if end == len(lines):
            raise DocTierError(f"{where}: the fenced block is never closed")
        prev = lines[i - 1] if i > 0 else ""
        marker_match = MARKER.match(prev)
        marker = parse_marker(marker_match.group(1).strip(), where) if marker_match else Marker()
        body = "\n".join(line[len(indent):] if line.startswith(indent) else line for line in lines[i + 1:end])
        blocks.append(Block(doc, i + 1, info.strip().split(" ")[0], body + "\n", marker))
        i = end + 1
    return blocks


def documents() -> list[Path]:
    """README.md and docs/*.md, except the generated docs/cli.md."""
    return [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "cli.md")]


# --- commands in shell text ---------------------------------------------------------------------------------

OPERATORS = {"&&", "||", ";", "|", "&", ";;", "(", ")", "|&"}
REDIRECTS = {">", ">>", "<", "<<", "<<<", ">&", "&>", ">|"}


def _logical_lines(text: str) -> list[str]:
    """Lines with `\\` continuations and multi-line quotes joined; heredoc bodies left out."""
    out: list[str] = []
    lines = re.sub(r"\\\n", " ", text).splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        k += 1
        while k < len(lines):
            try:
                shlex.split(line, comments=True)
                break
            except ValueError:  # an open quote: the command goes on
                line += "\n" + lines[k]
                k += 1
        out.append(line)
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if heredoc:
            while k < len(lines) and lines[k].strip() != heredoc.group(1):
                k += 1
            k += 1
    return out


def shell_commands(text: str) -> list[list[str]]:
    """The simple commands of a shell text, as word lists (comments, operators and redirections removed)."""
    commands: list[list[str]] = []
    for line in _logical_lines(text):
        line = re.sub(r"(?<=\s)\d+(?=[<>])", "", line)  # `2>`: the fd number is no argument
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        words: list[str] = []
        j = 0
        while j < len(tokens):
            tok = tokens[j]
            if tok in OPERATORS:
                if words:
                    commands.append(words)
                words = []
            elif tok and set(tok) <= set("<>&|"):  # a redirection: its target is not an argument
                j += 1
            else:
                words.append(tok)
            j += 1
        if words:
            commands.append(words)
    return commands


def seq2seq_invocations(text: str) -> list[list[str]]:
    """`[SUBCOMMAND, ARGS...]` for every seq2seq run in `text`: `seq2seq ...`, `python -m seq2seq_cli ...`,
    `torchrun ... -m seq2seq_cli ...` (global -v/-q and env assignments dropped)."""
    found = []
    for words in shell_commands(text):
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words = words[1:]
        if not words:
            continue
        prog = Path(words[0]).name
        rest = None
        if prog == "seq2seq":
            rest = words[1:]
        elif re.fullmatch(r"python[0-9.]*|torchrun", prog):
            for k, w in enumerate(words[:-1]):
                if w in ("-m", "--module") and words[k + 1] == "seq2seq_cli":
                    rest = words[k + 2:]
                    break
        if rest is None:
            continue
        while rest and rest[0] in ("-v", "-vv", "-q", "--verbose", "--quiet"):
            rest = rest[1:]
        found.append(rest)
    return found


def drop_placeholders(args: list[str]) -> list[str]:
    """Remove `...` tokens and `[...]` optional parts of a documented command line."""
    out, depth = [], 0
    for a in args:
        if depth == 0 and a.startswith("["):
            depth = 1
        if depth:
            if a.endswith("]"):
                depth = 0
            continue
        if a in ("...", "…"):
            continue
        out.append(a.rstrip(".") if a.endswith("...") and a != "..." else a)
    return out


def check_invocation(args: list[str]) -> None:
    """Parse `SUBCOMMAND ARGS...` against the click definition; DocTierError naming the problem.

    Checked: the subcommand exists; every option is one of its flags and has its value; values of choice, int and
    float flags convert; required arguments are given and no extra ones. Paths are not checked (they may not exist
    where the block cannot run).
    """
    from seq2seq_cli.cli import cli

    if not args:
        raise DocTierError("`seq2seq` without a subcommand")
    if args[0] in ("--help", "-h", "--version"):
        return
    root = click.Context(cli, info_name="seq2seq")
    command = cli.get_command(root, args[0])
    if command is None:
        raise DocTierError(f"no such subcommand: seq2seq {args[0]}")
    argv = drop_placeholders(args[1:])
    if "--help" in argv or "-h" in argv:
        return
    ctx = click.Context(command, info_name=args[0], parent=root)
    parser = command.make_parser(ctx)
    try:
        opts, extra, _ = parser.parse_args(list(argv))
    except click.UsageError as exc:
        raise DocTierError(f"seq2seq {args[0]}: {exc.format_message()}") from None
    unset = getattr(click.core, "UNSET", None)  # click >= 8.3 marks absent parameters with a sentinel
    opts = {k: v for k, v in opts.items() if v is not None and v is not unset}
    for param in command.get_params(ctx):
        if param.name not in opts:
            if isinstance(param, click.Argument) and param.required:
                raise DocTierError(f"seq2seq {args[0]}: missing argument {param.human_readable_name}")
            continue
        if isinstance(param.type, (click.Choice, click.types.IntParamType, click.types.FloatParamType)):
            try:
                param.type_cast_value(ctx, opts[param.name])
            except click.BadParameter as exc:
                raise DocTierError(f"seq2seq {args[0]} {max(param.opts, key=len)}: {exc.format_message()}") from None
    if extra:
        raise DocTierError(f"seq2seq {args[0]}: unexpected extra argument(s) {' '.join(extra)}")
    if "user_dir" not in opts:
        for param in command.get_params(ctx):
            kind = next((COMPONENT_FLAGS[o] for o in param.opts if o in COMPONENT_FLAGS), None)
            value = opts.get(param.name)
            if kind and isinstance(value, str) and not value.isupper() and value not in component_names(kind):
                raise DocTierError(f"seq2seq {args[0]} {max(param.opts, key=len)} {value}: no such {kind}; available: "
                                   f"{', '.join(component_names(kind))}")


COMPONENT_FLAGS = {"--tokenizer": "tokenizer", "--arch": "arch", "--strategy": "decoding", "--optimizer": "optimizer",
                   "--lr-scheduler": "lr-scheduler", "--criterion": "criterion"}


def component_names(kind: str) -> list[str]:
    """Registered names of a kind, and those the example plugin (examples/plugin/setup.cfg) declares."""
    import configparser

    from seq2seq_cli.registry import REGISTRIES

    registry = REGISTRIES[kind]
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "examples" / "plugin" / "setup.cfg", encoding="utf-8")
    declared = cfg["options.entry_points"].get(registry.group, "") if cfg.has_section("options.entry_points") else ""
    return sorted({*registry.names(), *(line.split("=")[0].strip() for line in declared.splitlines() if "=" in line)})


def cap_arguments(args: list[str]) -> list[str]:
    """What a `cap` block runs instead of `seq2seq ARGS`: short trainings, short outputs."""
    if not args:
        return args
    sub, rest = args[0], list(args[1:])
    if sub == "train":
        for flag in ("--max-update", "--stop-time-hours"):
            while flag in rest:
                k = rest.index(flag)
                del rest[k:k + 2]
            rest = [a for a in rest if not a.startswith(flag + "=")]
        return [sub, *rest, "--max-update", str(CAP_MAX_UPDATE), *TINY_MODEL]
    if sub in ("generate", "interactive"):
        return [sub, *rest, *SHORT_OUTPUT]
    if sub == "export":
        return [sub, *rest, "--check-lines", str(CAP_CHECK_LINES)]
    return args
