"""The committed browser libraries are the ones package-lock.json names, byte for byte."""

from __future__ import annotations

import json

import pytest

from dashboard.vendoring import FILES, LOCK_FILE, MANIFEST, NODE_MODULES, ROOT, VENDOR_DIR, package_folder, sha256_of

PACKAGE_JSON = ROOT / "package.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


@pytest.fixture(scope="module")
def lock() -> dict:
    return json.loads(LOCK_FILE.read_text())["packages"]


def test_package_json_pins_exact_versions_and_the_lock_file_resolves_them(lock):
    wanted = json.loads(PACKAGE_JSON.read_text())["dependencies"]
    for package, version in wanted.items():
        assert version[0].isdigit(), f"{package} is not pinned to an exact version: {version}"
        assert lock[f"node_modules/{package}"]["version"] == version
    assert lock[""]["dependencies"] == wanted


def test_the_manifest_names_the_versions_and_integrities_of_the_lock_file(manifest, lock):
    assert set(manifest["packages"]) == set(FILES)
    for package, entry in manifest["packages"].items():
        locked = lock[f"node_modules/{package}"]
        assert entry["version"] == locked["version"], package
        assert entry["integrity"] == locked["integrity"], package


def test_each_committed_package_json_is_the_locked_version(manifest):
    for package, entry in manifest["packages"].items():
        copied = json.loads((VENDOR_DIR / package_folder(package) / "package.json").read_text())
        assert copied["name"] == package
        assert copied["version"] == entry["version"]


def test_every_committed_file_matches_its_checksum_and_nothing_else_is_there(manifest):
    recorded = {}
    for entry in manifest["packages"].values():
        recorded.update(entry["files"])
    for path, facts in recorded.items():
        assert sha256_of(VENDOR_DIR / path) == facts["sha256"], f"{path} differs from what make vendor wrote"
    present = {p.relative_to(VENDOR_DIR).as_posix() for p in VENDOR_DIR.rglob("*") if p.is_file()}
    assert present - {"MANIFEST.json"} == set(recorded)


def test_each_library_carries_its_licence(manifest):
    for package in manifest["packages"]:
        licence = (VENDOR_DIR / package_folder(package) / "LICENSE").read_text()
        assert "Permission is hereby granted" in licence or "MIT" in licence, package


def test_the_built_files_say_the_version_they_are(manifest):
    versions = {p: e["version"] for p, e in manifest["packages"].items()}
    assert (
        f"Socket.IO v{versions['socket.io-client']}"
        in (VENDOR_DIR / "socket.io-client/socket.io.esm.min.js").read_text()
    )
    assert f"const REVISION = '{versions['three'].split('.')[1]}'" in (VENDOR_DIR / "three/three.core.js").read_text()
    assert "export { uPlot as default }" in (VENDOR_DIR / "uplot/uPlot.esm.js").read_text()


def test_after_npm_ci_the_copies_are_those_of_node_modules(manifest):
    """Only where ``make vendor`` has been run (it needs npm); elsewhere the checksums above stand."""
    if not NODE_MODULES.exists():
        pytest.skip("node_modules/ is absent: run `make vendor` to compare with the registry's packages")
    for package, entry in manifest["packages"].items():
        installed = json.loads((NODE_MODULES / package / "package.json").read_text())["version"]
        if installed != entry["version"]:
            pytest.skip(f"node_modules/{package} is {installed}, not the locked version: run `make vendor`")
        for path, facts in entry["files"].items():
            assert sha256_of(NODE_MODULES / package / facts["from"]) == facts["sha256"], path
