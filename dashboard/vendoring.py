"""``python -m dashboard.vendoring``: copy the browser libraries' built files into the app (``make vendor``).

The dashboard's libraries come from the npm registry at the versions
``package-lock.json`` pins. ``make vendor`` installs them (``npm ci``) and this
script copies the few built files the page loads, with their licences and
``package.json``, under ``dashboard/static/dashboard/vendor/``, and writes
``MANIFEST.json``: each package's version and integrity as the lock file names
them, and the SHA-256 of every copied file. The copies are committed, so
neither ``make run`` nor ``make test`` needs Node; ``tests/dashboard/test_vendor.py``
checks that the committed files are the ones the lock file names.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
LOCK_FILE = ROOT / "package-lock.json"
VENDOR_DIR = ROOT / "dashboard" / "static" / "dashboard" / "vendor"
MANIFEST = VENDOR_DIR / "MANIFEST.json"

# package -> {file in the package: where it goes under vendor/}. Every package
# also brings its LICENSE and package.json (which names its version).
FILES: dict[str, dict[str, str]] = {
    "three": {
        # three.module.js imports ./three.core.js; OrbitControls imports "three",
        # which the page's import map resolves to three.module.js.
        "build/three.module.js": "three/three.module.js",
        "build/three.core.js": "three/three.core.js",
        "examples/jsm/controls/OrbitControls.js": "three/addons/controls/OrbitControls.js",
    },
    "socket.io-client": {
        "dist/socket.io.esm.min.js": "socket.io-client/socket.io.esm.min.js",
        "dist/socket.io.esm.min.js.map": "socket.io-client/socket.io.esm.min.js.map",
    },
    "uplot": {
        "dist/uPlot.esm.js": "uplot/uPlot.esm.js",
        "dist/uPlot.min.css": "uplot/uPlot.min.css",
    },
    # Bundled into socket.io.esm.min.js: only their licences are copied.
    "engine.io-client": {},
    "engine.io-parser": {},
    "socket.io-parser": {},
    "@socket.io/component-emitter": {},
}
# Where a bundled package's licence and package.json go (inside the bundle's folder).
BUNDLED_INTO = {
    "engine.io-client": "socket.io-client/bundled/engine.io-client",
    "engine.io-parser": "socket.io-client/bundled/engine.io-parser",
    "socket.io-parser": "socket.io-client/bundled/socket.io-parser",
    "@socket.io/component-emitter": "socket.io-client/bundled/component-emitter",
}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_folder(package: str) -> str:
    """The folder under vendor/ that holds a package's licence and package.json."""
    return BUNDLED_INTO.get(package, package)


def lock_entries() -> dict[str, dict[str, str]]:
    """Each vendored package's version and integrity as ``package-lock.json`` names them."""
    lock = json.loads(LOCK_FILE.read_text())["packages"]
    return {
        package: {
            "version": lock[f"node_modules/{package}"]["version"],
            "integrity": lock[f"node_modules/{package}"]["integrity"],
        }
        for package in FILES
    }


def vendor_copy() -> dict:
    """Copy every file of ``FILES`` from node_modules/ into vendor/ and write the manifest.

    1. Check that node_modules/ holds exactly the versions the lock file names
       (``npm ci`` guarantees it; this catches a stale ``npm install``).
    2. Empty vendor/, copy the files, each package's LICENSE and package.json.
    3. Write MANIFEST.json: versions, integrities and each file's SHA-256.
    """
    locked = lock_entries()
    for package, entry in locked.items():
        installed = json.loads((NODE_MODULES / package / "package.json").read_text())["version"]
        if installed != entry["version"]:
            locked_version = entry["version"]
            raise SystemExit(f"node_modules/{package} is {installed}, the lock file says {locked_version}: run npm ci")
    if VENDOR_DIR.exists():
        shutil.rmtree(VENDOR_DIR)
    manifest: dict = {"generatedBy": "make vendor (python -m dashboard.vendoring)", "packages": {}}
    for package, files in FILES.items():
        source_dir = NODE_MODULES / package
        folder = package_folder(package)
        copies = {**files, "LICENSE": f"{folder}/LICENSE", "package.json": f"{folder}/package.json"}
        recorded = {}
        for source, target in copies.items():
            destination = VENDOR_DIR / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_dir / source, destination)
            recorded[target] = {"from": source, "sha256": sha256_of(destination)}
        manifest["packages"][package] = {**locked[package], "files": recorded}
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


if __name__ == "__main__":
    written = vendor_copy()
    count = sum(len(p["files"]) for p in written["packages"].values())
    print(f"vendored {count} files of {len(written['packages'])} packages into {VENDOR_DIR.relative_to(ROOT)}")
    sys.exit(0)
