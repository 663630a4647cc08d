"""Maps the top-level folders into the `ftlab` namespace.

`engine/`, `daemon/` and `tui/` live at the top of the repository (DESIGN.md) but install as
`ftlab.engine`, `ftlab.daemon` and `ftlab.tui`, never under bare names: `daemon` would collide
with python-daemon. Every folder with an `__init__.py` below a root is packaged;
tests/test_packaging.py builds the wheel and checks it.
"""

from setuptools import find_packages, setup

ROOTS = {"ftlab": "ftlab", "ftlab.engine": "engine", "ftlab.daemon": "daemon", "ftlab.tui": "tui"}


def _packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(folder)]
    return found


setup(packages=_packages(), package_dir=ROOTS)
