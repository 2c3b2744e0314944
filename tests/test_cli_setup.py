"""course.py, the two-command set-up: what it decides without installing anything."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_course():
    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_command_prints_usage_and_exits_2(capsys):
    course = load_course()

    assert course.main(["serve"]) == 2
    assert "python3 course.py lab" in capsys.readouterr().out


def test_fingerprint_changes_when_the_lock_changes(tmp_path, monkeypatch):
    course = load_course()
    (tmp_path / "pyproject.toml").write_text("a")
    (tmp_path / "requirements.lock").write_text("numpy==1")
    monkeypatch.setattr(course, "ROOT", tmp_path)
    before = course.install_fingerprint()

    (tmp_path / "requirements.lock").write_text("numpy==2")

    assert course.install_fingerprint() != before
    assert course.install_fingerprint().startswith(str(sys.version_info[:2]))


def test_this_environment_was_installed_by_course_py_from_the_current_lock():
    course = load_course()

    if Path(sys.prefix).resolve() != course.VENV.resolve():
        pytest.skip("the suite runs outside .venv (e.g. in a conda environment)")
    assert course.STAMP.read_text() == course.install_fingerprint()


def test_lab_serves_the_whole_repository_and_lands_on_the_chapters():
    lab = load_course().commands()["lab"]

    assert lab[:3] == ["-m", "jupyter", "lab"]
    assert f"--ServerApp.root_dir={ROOT}" in lab  # the package, benchmarks and README are one click away
    landing = next(a for a in lab if a.startswith("--LabApp.default_url=")).split("=", 1)[1]
    assert landing == "/lab/tree/notebooks" and (ROOT / "notebooks").is_dir()


def fake_venv(course, tmp_path, monkeypatch, version):
    """A virtual environment made by Python ``version``, stamped as up to date."""
    monkeypatch.setattr(course, "VENV", tmp_path / "venv")
    monkeypatch.setattr(course, "STAMP", tmp_path / "venv" / "flcourse-installed.txt")
    python = course.venv_python()
    python.parent.mkdir(parents=True)
    python.write_text("")
    (tmp_path / "venv" / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {version}\n")
    course.STAMP.write_text(course.install_fingerprint())
    calls = []
    monkeypatch.setattr(course.venv, "create", lambda *a, **k: calls.append(("create", k)))
    monkeypatch.setattr(course.subprocess, "run", lambda *a, **k: calls.append(("pip", a[0][-1])))
    return calls


def test_an_environment_made_by_this_python_is_reused(tmp_path, monkeypatch):
    course = load_course()
    calls = fake_venv(course, tmp_path, monkeypatch, f"{sys.version_info[0]}.{sys.version_info[1]}.0")

    course.set_up()

    assert calls == []


def test_an_environment_made_by_another_python_is_made_anew(tmp_path, monkeypatch, capsys):
    course = load_course()
    calls = fake_venv(course, tmp_path, monkeypatch, "3.9.18")
    course.STAMP.write_text("(3, 9) stale")  # what Python 3.9 would have stamped

    course.set_up()

    assert calls[0] == ("create", {"with_pip": True, "clear": True})
    assert [kind for kind, _ in calls] == ["create", "pip", "pip"]
    assert "made by Python 3.9; making it anew" in capsys.readouterr().out


def test_flcourse_venv_puts_the_environment_elsewhere(monkeypatch):
    monkeypatch.setenv("FLCOURSE_VENV", ".venv-3.99")

    assert load_course().VENV == ROOT / ".venv-3.99"
