"""The built wheel holds the app and nothing else: no top-level `shop` (the demo project)."""

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import ROOT

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def test_the_wheel_holds_productsync_only_with_its_templates_and_static_files(tmp_path):
    # Built from a copy of what a clean checkout has, so the build leaves nothing behind here.
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree)
    for name in ("productsync", "shop", "tests"):
        shutil.copytree(ROOT / name, tree / name, ignore=IGNORED)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(tree), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("productsync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # What pip installs is what the wheel holds: its top level is the app and its metadata.
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    assert {name.split("/")[0] for name in names} == {"productsync", dist_info}
    shipped = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "productsync").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert shipped - set(names) == set()
