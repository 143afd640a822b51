"""The lock file that ``make`` and CI install from (issue 13, item 12).

``requirements-lock.txt`` pins every dependency of ``pyproject.toml``, extras
included, with hashes, for Python 3.10 and later; it changes only through
``make lock``.  These checks fail when a dependency was added to
``pyproject.toml`` without regenerating the lock, or when the lock would
install a release known to be bad.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package (pytest depends on it there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-lock.txt"
# Releases that shipped credential-stealing code (litellm, March 2026), withdrawn since.
KNOWN_BAD = {"litellm": {"1.82.7", "1.82.8"}}

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)(?: ?;[^\\]*)?\s*\\$", re.MULTILINE)


def _locked() -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for name, version in _PIN.findall(LOCK.read_text()):
        pins.setdefault(canonicalize_name(name), set()).add(version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        requirements += [Requirement(r) for r in extra]
    return requirements


def test_every_pin_carries_hashes():
    text = LOCK.read_text()
    pins = _PIN.findall(text)
    assert len(pins) > 50
    blocks = [block for block in re.split(r"\n(?=\S)", text) if "==" in block.split("\n", 1)[0]]
    assert blocks and all("--hash=sha256:" in block for block in blocks)


def test_the_lock_covers_every_dependency_of_pyproject_extras_included():
    locked = _locked()
    missing = [str(r) for r in _declared() if canonicalize_name(r.name) not in locked]
    assert not missing, f"not in {LOCK.name}: {missing}; run `make lock` and commit the result"
    wrong = [
        f"{r.name}: locked {sorted(locked[canonicalize_name(r.name)])}, pyproject says {r.specifier}"
        for r in _declared()
        if not any(r.specifier.contains(Version(v), prereleases=True) for v in locked[canonicalize_name(r.name)])
    ]
    assert not wrong, f"the lock does not satisfy pyproject.toml: {wrong}; run `make lock`"


@pytest.mark.parametrize("name", sorted(KNOWN_BAD))
def test_known_bad_releases_are_excluded_in_pyproject_and_absent_from_the_lock(name):
    (declared,) = [r for r in _declared() if canonicalize_name(r.name) == name][:1]
    for bad in KNOWN_BAD[name]:
        assert not declared.specifier.contains(Version(bad)), f"pyproject.toml allows {name} {bad}"
    assert not (_locked()[name] & KNOWN_BAD[name])


def test_make_and_ci_install_from_the_lock_with_hashes():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r $(LOCK)" in makefile and "LOCK    = requirements-lock.txt" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
