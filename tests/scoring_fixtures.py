"""Files for the scoring tests: two real references of the Bible sample's test set and two made-up systems.

References: the first 100 lines of test.en (KJV, the bundled sample) and of test.en-web (World English Bible,
copied into tests/data/bible-test.en-web). The systems are deterministic damages of them, so their scores are
neither 0 nor 100 and differ from each other.
"""
from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REF_KJV = TESTS.parent / "examples" / "data" / "bible-sample" / "test.en"
REF_WEB = TESTS / "data" / "bible-test.en-web"


def _drop_every(line: str, n: int, offset: int) -> str:
    return " ".join(w for j, w in enumerate(line.split()) if (j + offset) % n)


def write_systems(folder: Path) -> dict[str, Path]:
    """Write sys_a, sys_b (100 lines each) into `folder`; return them and the two references by name."""
    kjv = REF_KJV.read_text(encoding="utf-8").splitlines()
    web = REF_WEB.read_text(encoding="utf-8").splitlines()
    sys_a = [_drop_every(web[i] if i % 2 else kjv[i], 4, i) for i in range(len(kjv))]
    sys_b = [_drop_every(kjv[i].replace("thee", "you").replace("thy", "your"), 7, i) for i in range(len(kjv))]
    folder.mkdir(parents=True, exist_ok=True)
    files = {"sys_a": folder / "sys_a.txt", "sys_b": folder / "sys_b.txt"}
    files["sys_a"].write_text("\n".join(sys_a) + "\n", encoding="utf-8")
    files["sys_b"].write_text("\n".join(sys_b) + "\n", encoding="utf-8")
    return {**files, "ref_kjv": REF_KJV, "ref_web": REF_WEB}


def read(path: Path) -> list[str]:
    """Lines as sacreBLEU's own command line reads them."""
    return [line.rstrip() for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


@pytest.fixture
def score_files(tmp_path: Path) -> dict[str, Path]:
    return write_systems(tmp_path / "score")
