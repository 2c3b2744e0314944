"""Set up the course and run it: the only two commands a learner needs.

    python3 course.py lab     # set up .venv on first use, then open JupyterLab on the chapters
    python3 course.py test    # set up .venv on first use, then run every test and notebook

Set-up creates a virtual environment in .venv and installs flcourse with the exact versions in
requirements.lock for this Python (the versions the notebooks were executed with). It runs again
only when pyproject.toml or requirements.lock change, and makes the environment anew when it
was made by another Python version. Needs nothing but Python >= 3.10. FLCOURSE_VENV=<folder>
puts the environment elsewhere (.ci/run keeps one per Python version).
Any further arguments go to JupyterLab or pytest, e.g. `python3 course.py test -x -k models`.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / os.environ.get("FLCOURSE_VENV", ".venv")
EXTRAS = "course,test,dask"
STAMP = VENV / "flcourse-installed.txt"


def venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def running_version() -> str:
    return ".".join(map(str, sys.version_info[:2]))


def venv_version() -> str | None:
    """The Python version (major.minor) that made the virtual environment, if there is one."""
    config = VENV / "pyvenv.cfg"
    if not config.exists():
        return None
    for line in config.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return ".".join(value.strip().split(".")[:2])
    return None


def install_fingerprint() -> str:
    files = [ROOT / "pyproject.toml", ROOT / "requirements.lock"]
    digest = hashlib.sha256(EXTRAS.encode())
    for file in files:
        digest.update(file.read_bytes())
    return f"{sys.version_info[:2]} {digest.hexdigest()}"


def set_up() -> Path:
    """Create .venv and install the locked environment unless it is already up to date."""
    if sys.version_info < (3, 10):
        sys.exit(f"flcourse needs Python >= 3.10; this is {sys.version.split()[0]}.")
    python = venv_python()
    if STAMP.exists() and python.exists() and STAMP.read_text() == install_fingerprint():
        return python
    made_by = venv_version()
    other_python = made_by != running_version()
    if python.exists() and other_python:
        print(f"{VENV} was made by Python {made_by}; making it anew for Python {running_version()} ...",
              flush=True)
    if not python.exists() or other_python:
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        try:
            venv.create(VENV, with_pip=True, clear=True)
        except Exception as error:  # e.g. Debian/Ubuntu without the python3-venv package
            sys.exit(f"Could not create {VENV}: {error}\nOn Debian or Ubuntu, install the venv "
                     f"module first: sudo apt install python3-venv")
    print("Installing flcourse and the locked versions of its dependencies ...", flush=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["-c", str(ROOT / "requirements.lock"), "-e", f"{ROOT}[{EXTRAS}]"], check=True)
    STAMP.write_text(install_fingerprint())
    return python


def commands() -> dict:
    """The arguments each command passes to the virtual environment's Python."""
    return {
        # the whole repository in the file browser (the package, benchmarks, README), landing on the chapters
        "lab": ["-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}",
                "--LabApp.default_url=/lab/tree/notebooks"],
        "test": ["-m", "pytest"],
    }


def main(argv: list[str]) -> int:
    known = commands()
    if not argv or argv[0] not in known:
        print(__doc__.strip())
        return 2
    python = set_up()
    os.chdir(ROOT)
    return subprocess.call([str(python), *known[argv[0]], *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
