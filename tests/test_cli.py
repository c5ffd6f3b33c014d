"""The neurosim command line: exit codes, one-line errors, the demo's output."""
from __future__ import annotations

import subprocess
import sys

import pytest

from neurosim import __version__
from neurosim.cli import main


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out
    assert main([]) == 2  # no command: help, usage exit code


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-m", "neurosim.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "demo" in r.stdout


def test_demo_prints_schemes_and_writes_raster(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--tokens", "32", "--channels", "256"]) == 0
    text = capsys.readouterr().out
    for scheme in ("binary", "ternary", "bitwise", "bitwise-signed", "bitwise-twos"):
        assert scheme in text
    png = out / "raster.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_demo_refuses_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("precious")
    assert main(["demo", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neurosim: error:") and "--overwrite" in err and "Traceback" not in err
    assert (tmp_path / "keep.txt").read_text() == "precious"
