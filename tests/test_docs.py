"""The user documentation runs as written, and the code cites public sources only."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRACE_DOC = ROOT / "docs" / "trace.md"
DOC_PATH_LINE = 'path = "runs/first/trace.h5"'


def python_blocks(md: Path) -> list[str]:
    """The ```python code blocks of a Markdown file, in order."""
    return re.findall(r"```python\n(.*?)```", md.read_text(encoding="utf-8"), re.S)


@pytest.mark.slow
def test_trace_doc_example_runs_on_a_real_trace(smollm_trace, tmp_path, capsys):
    from analysis.stats import SpikeStats, write_stats

    path = Path(shutil.copy(smollm_trace.path, tmp_path / "trace.h5"))  # the fixture's file stays untouched
    write_stats(path, SpikeStats.from_trace(smollm_trace, progress=False))  # as `neurosim run` leaves it
    (code,) = [b for b in python_blocks(TRACE_DOC) if DOC_PATH_LINE in b]
    namespace: dict = {}
    exec(compile(code.replace(DOC_PATH_LINE, f"path = {str(path)!r}"), str(TRACE_DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert f"tokens: {smollm_trace.n_tokens}" in out and "sparsity" in out and "clipped" in out
    assert namespace["counts"].shape == (smollm_trace.n_tokens, namespace["info"].in_features)
    assert 0 < namespace["s"]["sparsity"] < 1 and len(namespace["rows"]) == len(smollm_trace.layers)


def test_docs_are_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("trace.md", "export-formats.md"):
        assert f"docs/{name}" in readme and (ROOT / "docs" / name).is_file(), name


def test_code_cites_public_sources_not_private_notes():
    private = re.compile("shared" + r"/(reference|design)")  # split so that this line does not match
    offenders = []
    for path in ROOT.rglob("*.py"):
        if any(part.startswith(".") for part in path.relative_to(ROOT).parts):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if private.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert offenders == [], offenders


def test_no_benchmark_script_shadows_a_package():
    """Run as ``python benchmarks/X.py``, the benchmarks folder comes first on sys.path: a
    script named like one of the project's packages would be imported in its place."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"benchmarks", "tests"}
    assert {"encoders", "hw_models", "neurosim", "analysis"} <= packages
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    assert "gpu_energy" in scripts and not scripts & packages, scripts & packages
