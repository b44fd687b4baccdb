"""Config helpers: strict from_dict, to_dict round trips, apply_overrides coercion and its errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from seq2seq_cli.config import apply_overrides, coerce, describe_fields, from_dict, load_json, to_dict
from seq2seq_cli.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    depth: int = 1


@dataclass(frozen=True)
class Sample:
    """A config with one field of each kind the helpers handle."""

    layers: int = 6
    dropout: float = 0.1
    shared: bool = False
    betas: tuple[float, float] = (0.9, 0.98)
    sizes: tuple[int, ...] = ()
    activation: Literal["relu", "gelu"] = field(default="relu", metadata={"help": "Activation function."})
    max_tokens: int | None = None
    name: Optional[str] = None
    save_dir: Path = Path("checkpoints")
    inner: Inner = field(default_factory=Inner)


def test_to_dict_from_dict_round_trip_restores_types():
    cfg = Sample(layers=2, dropout=0.3, shared=True, betas=(0.8, 0.9), sizes=(1, 2), activation="gelu",
                 max_tokens=4096, name="x", save_dir=Path("/tmp/run"), inner=Inner(3))
    data = to_dict(cfg)
    assert data["betas"] == [0.8, 0.9] and data["save_dir"] == "/tmp/run" and data["inner"] == {"depth": 3}
    back = from_dict(Sample, data)
    assert back == cfg
    assert isinstance(back.save_dir, Path) and isinstance(back.betas, tuple)


def test_from_dict_missing_keys_take_defaults_and_ints_become_floats():
    cfg = from_dict(Sample, {"dropout": 0})
    assert cfg == Sample(dropout=0.0) and isinstance(cfg.dropout, float)


def test_from_dict_unknown_key_names_it_and_the_valid_fields():
    with pytest.raises(ConfigError, match=r"^config.json: unknown field\(s\) encoder_layer, foo for Sample; "
                                          r"valid fields: layers, dropout, shared, betas, sizes, activation, "
                                          r"max_tokens, name, save_dir, inner$"):
        from_dict(Sample, {"encoder_layer": 3, "foo": 1, "layers": 2}, source="config.json")


@pytest.mark.parametrize("data, message", [
    ({"layers": "6"}, r"config: Sample.layers = '6': expected int"),
    ({"layers": True}, r"config: Sample.layers = True: expected int"),
    ({"shared": 1}, r"config: Sample.shared = 1: expected bool"),
    ({"dropout": "0.1"}, r"config: Sample.dropout = '0.1': expected float"),
    ({"betas": [0.9]}, r"config: Sample.betas: expected 2 values \(tuple\[float, float\]\), got 1"),
    ({"sizes": [1, "a"]}, r"config: Sample.sizes = 'a': expected int"),
    ({"activation": "tanh"}, r"config: Sample.activation = 'tanh': choose one of 'relu', 'gelu'"),
    ({"max_tokens": "many"}, r"config: Sample.max_tokens = 'many': expected int \| None"),
    ({"inner": {"depht": 2}}, r"config: Sample.inner: unknown field\(s\) depht for Inner; valid fields: depth"),
])
def test_from_dict_wrong_types_name_the_field(data, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        from_dict(Sample, data)


def test_from_dict_optional_accepts_none():
    assert from_dict(Sample, {"max_tokens": None, "name": None}) == Sample()


def test_apply_overrides_coerces_by_field_type():
    cfg = apply_overrides(Sample(), [
        "layers=3", "dropout=0.25", "shared=true", "betas=0.8,0.95", "sizes=[4, 5, 6]", "activation=gelu",
        "max-tokens=1024", "--name=big", "save_dir=/tmp/x",
    ])
    assert cfg == Sample(layers=3, dropout=0.25, shared=True, betas=(0.8, 0.95), sizes=(4, 5, 6),
                         activation="gelu", max_tokens=1024, name="big", save_dir=Path("/tmp/x"))
    assert isinstance(cfg.max_tokens, int)  # int | None parses as an int, not the string "1024"


@pytest.mark.parametrize("text, value", [("true", True), ("Yes", True), ("1", True), ("on", True),
                                         ("false", False), ("no", False), ("0", False), ("OFF", False)])
def test_bool_spellings(text, value):
    assert apply_overrides(Sample(shared=not value), [f"shared={text}"]).shared is value


def test_optional_fields_take_none():
    cfg = apply_overrides(Sample(max_tokens=5, name="x"), ["max_tokens=none", "name=null"])
    assert cfg.max_tokens is None and cfg.name is None
    assert coerce(Optional[int], "7", "x") == 7


def test_literal_of_ints_gives_the_int():
    assert coerce(Literal[1, 2], "2", "order") == 2


@pytest.mark.parametrize("item, message", [
    ("layers", r"--model-opt 'layers': expected KEY=VALUE"),
    ("layer=3", r"--model-opt 'layer=3': Sample has no field 'layer'; valid fields: layers, dropout, shared, betas, "
                r"sizes, activation, max_tokens, name, save_dir, inner"),
    ("layers=3.5", r"--model-opt layers='3.5': expected a value of type int"),
    ("dropout=high", r"--model-opt dropout='high': expected a value of type float"),
    ("shared=maybe", r"--model-opt shared='maybe': expected a value of type bool"),
    ("activation=tanh", r"--model-opt activation='tanh': choose one of relu, gelu"),
    ("betas=0.9", r"--model-opt betas: expected 2 values \(tuple\[float, float\]\), got 1"),
    ("sizes=1,x", r"--model-opt sizes='x': expected a value of type int"),
    ("max_tokens=lots", r"--model-opt max_tokens='lots': expected a value of type int"),
])
def test_apply_overrides_errors_name_flag_field_and_value(item, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        apply_overrides(Sample(), [item])


def test_apply_overrides_uses_the_given_flag_and_leaves_the_original_alone():
    cfg = Sample()
    with pytest.raises(ConfigError, match=r"^--strategy-opt 'beam=5'"):
        apply_overrides(cfg, ["beam=5"], flag="--strategy-opt")
    assert apply_overrides(cfg, ["layers=1"]).layers == 1 and cfg.layers == 6


def test_describe_fields_gives_readable_types_defaults_and_help():
    rows = {name: (tp, default, help_) for name, tp, default, help_ in describe_fields(Sample)}
    assert rows["layers"] == ("int", 6, "")
    assert rows["betas"] == ("tuple[float, float]", (0.9, 0.98), "")
    assert rows["sizes"][0] == "tuple[int, ...]"
    assert rows["activation"] == ("Literal['relu', 'gelu']", "relu", "Activation function.")
    assert rows["max_tokens"][0] == "int | None"
    assert rows["save_dir"] == ("Path", Path("checkpoints"), "")
    assert rows["inner"] == ("Inner", Inner(), "")

    @dataclass
    class Required:
        path: str

    assert describe_fields(Required) == [("path", "str", "(required)", "")]


def test_load_json_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"missing.json: no such file"):
        load_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON"):
        load_json(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"list.json: expected a JSON object"):
        load_json(tmp_path / "list.json")
    (tmp_path / "ok.json").write_text('{"layers": 2}', encoding="utf-8")
    assert from_dict(Sample, load_json(tmp_path / "ok.json")).layers == 2

