"""The code blocks of README.md and docs/*.md run as written.

Every ```python block is executed, each in a fresh namespace and in a temporary working folder.
The README's example trains the paper's network on Fashion-MNIST for 30 epochs; to keep the suite
fast this harness runs it with ``motifcore.datasets.load`` returning the first 512 training and
256 test samples of what it would load, and every ``Trainer`` capped at 1 epoch. The text of the
block is not changed. Set ``MOTIFCORE_DOCS_SMOKE=0`` to run it at full size (minutes to hours).
The blocks of docs/*.md run as written, without any patch.

Every ```bash block is checked more lightly: each ``motifcore ...`` / ``python -m motifcore ...``
command in it must be accepted by the command-line parser (flags and values), which catches docs
that drift from the CLI.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import motifcore
import pytest
from conftest import REPO
from motifcore.cli import build_parser

SMOKE = os.environ.get("MOTIFCORE_DOCS_SMOKE", "1") != "0"
OPTIONAL = {"torch", "onnx", "onnxruntime", "matplotlib", "dask", "distributed"}   # extras: a block needing one skips
SMOKE_TRAIN, SMOKE_TEST, SMOKE_EPOCHS = 512, 256, 1

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _blocks(path: Path, lang: str) -> list[tuple[int, str]]:
    """(first line, code) of every block fenced as ```lang in a Markdown file."""
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(2)) for m in _FENCE.finditer(text) if m.group(1) == lang]


DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PYTHON_BLOCKS = [pytest.param(p, line, code, id=f"{p.relative_to(REPO)}:{line}")
                 for p in DOCS for line, code in _blocks(p, "python")]
BASH_BLOCKS = [pytest.param(p, line, code, id=f"{p.relative_to(REPO)}:{line}")
               for p in DOCS for line, code in _blocks(p, "bash")]


def test_the_readme_has_a_python_example():
    assert any(p.name == "README.md" for p, *_ in (b.values for b in PYTHON_BLOCKS))


def _smoke_patches(monkeypatch: pytest.MonkeyPatch) -> None:
    real_load = motifcore.datasets.load

    def small_load(*args, **kwargs):
        X, y, Xt, yt = real_load(*args, **kwargs)
        return X[:SMOKE_TRAIN], y[:SMOKE_TRAIN], Xt[:SMOKE_TEST], yt[:SMOKE_TEST]

    class ShortTrainer(motifcore.Trainer):
        def __init__(self, model, *, epochs=30, **kwargs):
            super().__init__(model, epochs=min(epochs, SMOKE_EPOCHS), **kwargs)

    monkeypatch.setattr(motifcore.datasets, "load", small_load)
    monkeypatch.setattr(motifcore, "Trainer", ShortTrainer)


@pytest.mark.slow
@pytest.mark.parametrize("path, line, code", PYTHON_BLOCKS)
def test_python_block_runs(path, line, code, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIFCORE_DATA", str(data_dir))
    monkeypatch.chdir(tmp_path)
    if path.name == "README.md" and SMOKE:
        _smoke_patches(monkeypatch)
    try:
        exec(compile(code, f"{path}:{line}", "exec"), {"__name__": "__docs__"})
    except ModuleNotFoundError as exc:
        if exc.name not in OPTIONAL:
            raise
        pytest.skip(f"the block needs {exc.name}, an optional dependency that is not installed")


def _motifcore_commands(code: str) -> list[list[str]]:
    """The argument lists of the motifcore commands of a shell block (comments, continuation
    lines, ``&&``/``;`` chains and leading VAR=value assignments handled)."""
    code = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in code.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token not in ("&&", "||", ";", "|", "&", ">", ">>", "<"):
                words.append(token)
                continue
            while words and re.match(r"^\w+=", words[0]):
                words.pop(0)
            if words[:1] == ["motifcore"]:
                out.append(words[1:])
            elif words[:3] in (["python", "-m", "motifcore"], ["python3", "-m", "motifcore"]):
                out.append(words[3:])
            words = []
    return out


@pytest.mark.parametrize("path, line, code", BASH_BLOCKS)
def test_bash_block_commands_parse(path, line, code):
    for argv in _motifcore_commands(code):
        build_parser().parse_args(argv)       # raises UsageError on an unknown flag or a bad value


def test_command_extraction():
    cmds = _motifcore_commands("pip install . && MOTIFCORE_DATA=x motifcore train --dataset digits \\\n"
                               "    --motif 2  # comment\npython -m motifcore info --json; ls\n"
                               "motifcore report d --title 'a; b' > out.md\n")
    assert cmds == [["train", "--dataset", "digits", "--motif", "2"], ["info", "--json"],
                    ["report", "d", "--title", "a; b"]]
