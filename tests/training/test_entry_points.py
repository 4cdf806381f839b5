"""Entry points import the user's own module files only, and never call what they load."""

import hashlib
import os
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from sweep.config.code_dirs import trust
from sweep.errors import ConfigError
from sweep.training.entry_points import import_located, load_entry_point, locate_entry_point


@pytest.fixture(autouse=True)
def trusted_tmp_path(tmp_path):
    trust(tmp_path)  # as if a config file there had been read, or --code-dir given


def unique(prefix: str = "m") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"  # sys.modules outlives a test: no name is reused


def write_module(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name.replace('.', '/')}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def test_a_function_from_the_code_dir_is_loaded_uncalled_with_its_file_hash(tmp_path):
    name = unique()
    path = write_module(tmp_path, name, "CALLS = []\ndef build(shape, classes):\n    CALLS.append(1)\n    return 7\n")
    entry = load_entry_point(f"{name}:build", str(tmp_path), "model.builder")
    assert entry.file == path.resolve() and entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry.function.__globals__["CALLS"] == []  # importing called nothing
    assert entry.function((1,), 2) == 7
    assert entry.describe() == {"entry_point": f"{name}:build", "file": str(path.resolve()), "sha256": entry.sha256}


def test_a_package_module_under_the_working_directory_is_found(tmp_path, monkeypatch):
    package = unique("pkg")
    write_module(tmp_path, f"{package}.__init__", "")
    write_module(tmp_path, f"{package}.models", "def build(shape, classes):\n    return shape\n")
    monkeypatch.chdir(tmp_path)
    entry = load_entry_point(f"{package}.models:build", None, "model.builder")
    assert entry.function((3,), 2) == (3,)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("os:abort", "standard library module 'os'"),
        ("os.path:join", "standard library module 'os'"),
        ("subprocess:run", "standard library module 'subprocess'"),
        ("sweep.config:load_config", "sweep's own module"),
        ("numpy:zeros", "module 'numpy' is .*site-packages.*not a file under"),
        ("keras.models:Model", "module 'keras' is .*not a file under"),
    ],
)
def test_the_standard_library_installed_packages_and_sweep_are_refused_before_anything_runs(
    spec, message, tmp_path, monkeypatch
):
    calls = []
    monkeypatch.setattr(os, "abort", lambda: calls.append("abort"))
    with pytest.raises(ConfigError, match=message):
        load_entry_point(spec, str(tmp_path), "model.builder")
    assert calls == []


def test_a_code_dir_pointing_into_site_packages_is_refused(tmp_path):
    """A database row can name any folder as study.code_dir: installed code stays refused,
    first because no invocation chose that folder, and even if one did."""
    site_packages = str(Path(np.__file__).parents[1])
    with pytest.raises(ConfigError, match=f"study.code_dir {site_packages} is not a folder this run may import"):
        load_entry_point("numpy.linalg:norm", site_packages, "model.builder")
    trust(site_packages)
    with pytest.raises(ConfigError, match="not a file under"):
        load_entry_point("numpy.linalg:norm", site_packages, "model.builder")


def test_a_code_dir_no_invocation_chose_is_refused_before_its_code_runs(tmp_path):
    elsewhere = tmp_path.parent / f"elsewhere-{uuid.uuid4().hex[:6]}"
    elsewhere.mkdir()
    name = unique()
    marker = elsewhere / "ran"
    write_module(elsewhere, name, f"open({str(marker)!r}, 'w').close()\ndef build(shape, classes):\n    return 1\n")
    with pytest.raises(ConfigError) as info:
        load_entry_point(f"{name}:build", str(elsewhere), "model.builder")
    message = str(info.value)
    assert str(elsewhere) in message and str(Path.cwd()) in message and "--code-dir" in message
    assert not marker.exists() and name not in sys.modules


def test_a_module_is_hashed_before_it_runs_and_runs_from_the_hashed_bytes(tmp_path):
    package = unique("pkg")
    marker = tmp_path / "ran"
    write_module(tmp_path, f"{package}.__init__", f"open({str(marker)!r}, 'a').write('init ')\n")
    path = write_module(tmp_path, f"{package}.models",
                        f"open({str(marker)!r}, 'a').write('models ')\ndef build(shape, classes):\n    return 1\n")
    located = locate_entry_point(f"{package}.models:build", str(tmp_path), "model.builder")
    assert located.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not marker.exists() and package not in sys.modules  # not even the package's __init__ ran
    path.write_text("def build(shape, classes):\n    return 2\n")  # changed after hashing
    entry = import_located(located)
    assert entry.function(0, 0) == 1 and entry.sha256 == located.sha256  # what was hashed is what ran
    assert marker.read_text() == "init models "


def test_a_module_named_like_an_installed_one_is_refused_not_shadowed(tmp_path):
    write_module(tmp_path, "yaml", "def build(shape, classes):\n    return None\n")
    with pytest.raises(ConfigError, match="module 'yaml' is .*rename yours"):
        load_entry_point("yaml:build", str(tmp_path), "model.builder")


def test_a_function_defined_elsewhere_is_refused(tmp_path):
    name = unique()
    write_module(tmp_path, name, "from os.path import join as build\n")
    with pytest.raises(ConfigError, match="is defined in .*posixpath.*, outside"):
        load_entry_point(f"{name}:build", str(tmp_path), "model.builder")


@pytest.mark.parametrize(
    "body, spec_suffix, message",
    [
        (None, "build", "no module '{name}' under"),
        ("def other():\n    pass\n", "build", "module '{name}' .* has no function 'build'"),
        ("x = 1 / 0\n", "build", "module '{name}' of '{name}:build' does not import: ZeroDivisionError: division by zero"),
        ("import not_a_real_module_xyz\n", "build", "does not import: ModuleNotFoundError"),
        ("build = 3\n", "build", "is a int, expected a Python function"),
    ],
)
def test_bad_entry_points_are_one_line_config_errors(body, spec_suffix, message, tmp_path):
    name = unique()
    if body is not None:
        write_module(tmp_path, name, body)
    with pytest.raises(ConfigError, match=message.format(name=name)) as info:
        load_entry_point(f"{name}:{spec_suffix}", str(tmp_path), "model.builder")
    assert "\n" not in str(info.value) and str(info.value).startswith("model.builder: ")


def test_a_changed_file_is_imported_again_with_its_new_hash(tmp_path):
    name = unique()
    path = write_module(tmp_path, name, "def build(shape, classes):\n    return 1\n")
    first = load_entry_point(f"{name}:build", str(tmp_path), "model.builder")
    path.write_text("def build(shape, classes):\n    return 2\n")
    second = load_entry_point(f"{name}:build", str(tmp_path), "model.builder")
    assert (first.function(0, 0), second.function(0, 0)) == (1, 2) and first.sha256 != second.sha256
