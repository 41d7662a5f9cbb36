"""pyproject.toml: the Python versions rankloop allows, and its license as setuptools >= 77 reads it."""
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_python_3_11_to_3_13_are_allowed():
    allowed = SpecifierSet(PROJECT["project"]["requires-python"])
    assert [v for v in ("3.10", "3.11", "3.12", "3.13", "3.14") if v in allowed] == ["3.11", "3.12", "3.13"]
    assert "PYTHON ?= python3.11" in (ROOT / "Makefile").read_text()  # CI stays on 3.11


def test_license_is_an_spdx_expression_with_its_file():
    assert PROJECT["project"]["license"] == "Apache-2.0"
    assert all((ROOT / name).is_file() for name in PROJECT["project"]["license-files"])
    assert any(req.startswith("setuptools>=77") for req in PROJECT["build-system"]["requires"])
