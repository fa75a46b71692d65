"""The package's import graph: no cycles, no private cross-module imports, dependencies one way, and
argparse only in motifcore.cli (static: AST, so imports inside functions count too); what
``import motifcore`` and ``import motifcore.data`` load (a fresh interpreter each); the removed flat
module paths stay removed; one version. The rules are explained in docs/architecture.md."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import motifcore
import pytest

PKG = Path(motifcore.__file__).resolve().parent
# subpackage (or root module) -> what it may import inside motifcore; "_core"/"_version" are always allowed
ALLOWED = {
    "_internal": set(),
    "recipes": set(),
    "export": {"_internal"},
    "nn": {"_internal", "export"},
    "data": {"_internal"},
    "analysis": {"_internal"},
    "train": {"nn", "recipes", "_internal"},
    "experiments": {"train", "recipes", "nn", "data", "analysis", "baselines", "_internal"},
    "report": {"experiments", "analysis", "_internal"},
    "sklearn": {"train", "recipes", "nn", "analysis", "_internal"},   # analysis: feature_importances_
    "baselines": {"train", "nn", "_internal"},
    "cli": {"experiments", "report", "train", "recipes", "nn", "export", "data", "analysis", "baselines", "_internal"},
    "torch": {"train", "nn", "export", "_internal"},      # motifcore.torch (needs torch; nothing imports it)
}
# motifcore.defaults (the owner of defaults and registries) and errors.py sit at the bottom with
# _core and _version: anything may read them, and they import nothing of motifcore (nor anything heavy)
LEAVES = {"_core", "_version", "defaults", "errors"}


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["motifcore", *parts])] = f
    out["motifcore._core"] = PKG / "_core.pyi"
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) for every import of a motifcore module in `path`."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("motifcore"):
                continue
            for a in node.names:              # `from pkg import submodule` is an import of the submodule
                sub = f"{target}.{a.name}"
                found.append((node.lineno, sub, []) if sub in MODULES else (node.lineno, target, [a.name]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("motifcore")]
    return found


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_shim(path: Path) -> bool:
    return path.parent == PKG and "_sys.modules[__name__]" in path.read_text()


EDGES = {m: _imports(m, p) for m, p in MODULES.items() if p.suffix == ".py"}


def test_no_private_name_crosses_modules():
    bad = [f"{MODULES[m].relative_to(PKG)}:{line} imports {n} from {t}"
           for m, edges in EDGES.items() for line, t, names in edges for n in names
           if n.startswith("_") and n not in ("__version__",) and t != m]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {m: {t for _, t, _ in e if t in MODULES and t != m and t != "motifcore"} for m, e in EDGES.items()
             if m != "motifcore"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_dependencies_point_one_way():
    bad = set()
    for m, edges in EDGES.items():
        src = _area(m)
        if m == "motifcore" or src == "__main__" or _is_shim(MODULES[m]):
            continue
        for line, t, _ in edges:
            dst = _area(t)
            if dst and dst != src and dst not in LEAVES and dst not in ALLOWED.get(src, set()):
                bad.add(f"{MODULES[m].relative_to(PKG)}:{line}: {src or 'motifcore'} -> {dst}")
    assert not bad, "\n".join(sorted(bad))


def test_defaults_import_only_the_standard_library():
    # the registry of defaults is read by every layer (and by the torch layers): it must stay
    # importable without the engine or any heavy dependency, and without a cycle
    tree = ast.parse((PKG / "defaults.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "dataclasses", "typing"}, imported


def test_errors_imports_nothing_from_motifcore():
    # every module may import errors.py, so it must stay at the bottom of the graph
    assert EDGES["motifcore.errors"] == []


def test_argparse_only_in_cli():
    bad = [str(p.relative_to(PKG)) for m, p in MODULES.items()
           if p.suffix == ".py" and _area(m) != "cli" and "argparse" in {
               a.name for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Import) for a in n.names}]
    assert not bad, bad


def test_print_only_in_cli():
    # the library logs through the "motifcore" logger; the command line owns the console
    bad = [f"{p.relative_to(PKG)}:{n.lineno}" for m, p in MODULES.items()
           if p.suffix == ".py" and _area(m) != "cli"
           for n in ast.walk(ast.parse(p.read_text()))
           if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"]
    assert not bad, bad


# the flat module paths of the first layout, removed at 0.1 (docs/architecture.md, "Removed paths")
OLD_PATHS = ("trainer", "schedules", "checkpoint", "datasets", "metrics", "estimate", "sweep")


@pytest.mark.parametrize("old", OLD_PATHS)
def test_old_module_files_are_gone(old):
    assert not (PKG / f"{old}.py").exists()
    assert not any(_is_shim(p) for p in PKG.glob("*.py"))


def _loaded_after(statement: str) -> set[str]:
    """The top-level names of the modules in sys.modules after `statement`, in a fresh interpreter."""
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


HEAVY = ("scipy", "sklearn", "dask", "distributed", "matplotlib", "torch", "onnx", "onnxruntime", "pandas")


def test_import_motifcore_is_light():
    loaded = _loaded_after("import motifcore")
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"import motifcore loads {heavy}"
    eager = sorted(m for m in loaded if m.startswith(("motifcore.report", "motifcore.experiments",
                                                       "motifcore.analysis", "motifcore.baselines",
                                                       "motifcore.cli", "motifcore.sklearn")))
    assert not eager, f"import motifcore loads {eager}"
    assert "motifcore.nn" in loaded and "motifcore.errors" in loaded


def test_lazy_names_resolve_on_first_use():
    # the probe above must be able to fail: using a lazy name imports its module
    loaded = _loaded_after("import motifcore\nmotifcore.metrics")
    assert "motifcore.analysis.metrics" in loaded


def test_data_does_not_import_sklearn():
    # scikit-learn belongs to sklearn.py; data/ imports it inside the two loaders that need it
    loaded = _loaded_after("import motifcore.data")
    assert "motifcore.data.datasets" in loaded
    assert not sorted(m for m in loaded if m.split(".")[0] in ("sklearn", "scipy")), "motifcore.data loads sklearn/scipy"
    assert "sklearn" in _loaded_after("import motifcore.data\nmotifcore.data.load('digits')")


def test_public_api():
    for name in motifcore.__all__:
        assert hasattr(motifcore, name), name
    assert set(motifcore.__all__) <= set(dir(motifcore))
    assert motifcore.Trainer is motifcore.train.Trainer is motifcore.train.trainer.Trainer
    assert motifcore.MotifMLP is motifcore.nn.MotifMLP
    assert motifcore.datasets is motifcore.data.datasets
    assert motifcore.sweep is motifcore.experiments.sweep
    assert callable(motifcore.sweep.run_sweep) and callable(motifcore.report.write_report)
    assert callable(importlib.import_module("motifcore.cli").main)
    with pytest.raises(AttributeError):
        motifcore.trainer   # noqa: B018 - an old alias, removed


def test_one_version():
    from importlib.metadata import version

    assert motifcore.__version__ == version("motifcore")


def test_split_modules_keep_their_public_paths():
    # train/trainer.py gave History and the callbacks their own modules, experiments/sweep.py its
    # spec half: the package paths stay, and motifcore.sweep still offers the spec functions
    from motifcore.experiments import sweep, sweep_spec
    from motifcore.train import callbacks, history

    assert motifcore.History is motifcore.train.History is history.History
    for name in ("Callback", "Checkpoint", "EarlyStopping", "JSONLLogger", "RestoreBest"):
        assert getattr(motifcore.train, name) is getattr(callbacks, name), name
    for name in ("DEFAULTS", "SWEEP_RECIPE", "expand_runs", "load_spec", "motif_label", "normalize_spec", "run_id"):
        assert getattr(motifcore.sweep, name) is getattr(sweep_spec, name), name
    assert set(sweep_spec.__all__) - {"EXECUTION_KEYS", "IDENTITY_KEYS"} <= set(sweep.__all__)
