"""Real npm packages and Node for tests that run JavaScript clients: installed once, outside the repository.

    sdk = npm_package_dir("@growthbook/growthbook@1")       # <cache>/…/node_modules/@growthbook/growthbook
    answer = node_json(script=path, data={"sdk": str(sdk)})  # node <path>, data on stdin, JSON back

Packages go to ``BEACONS_NPM_CACHE`` (default ``~/.cache/beacons-npm``), one ``npm install --prefix``
directory per spec, so a test run downloads each package once per machine. A test that needs Node is
skipped only when ``npm`` is missing (CI installs it); a failed install or script fails the test.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

CACHE = Path(os.environ.get("BEACONS_NPM_CACHE", Path.home() / ".cache" / "beacons-npm"))
INSTALL_TIMEOUT_SECONDS = 300
NODE_TIMEOUT_SECONDS = 120


def npm_required() -> None:
    """Skip the calling test when npm (and with it Node) is not installed."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm is not installed")


def package_name(spec: str) -> str:
    """The package a spec names: "@growthbook/growthbook@1" -> "@growthbook/growthbook", "umami@2" -> "umami"."""
    return spec[0] + spec[1:].split("@", 1)[0]


def npm_package_dir(spec: str) -> Path:
    """The directory of the installed package ``spec`` (what Node's ``require()`` takes), installing it
    on first use. Other pytest workers installing it at the same time are harmless: each installs into a
    directory of its own and renames it into place, the first rename wins, so none reads a half install."""
    npm_required()
    prefix = CACHE / re.sub(r"[^\w.@-]+", "-", spec)
    if not prefix.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".installing-", dir=CACHE))
        result = subprocess.run(
            ["npm", "install", "--prefix", str(partial), "--no-audit", "--no-fund", "--no-save", spec],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
        )
        if result.returncode:
            shutil.rmtree(partial, ignore_errors=True)
            pytest.fail(f"npm install {spec} failed:\n{result.stderr[-4000:]}")
        try:
            partial.rename(prefix)
        except OSError:  # another worker's install got there first
            shutil.rmtree(partial, ignore_errors=True)
    return prefix / "node_modules" / package_name(spec)


def node_json(*, script: Path, data: Any) -> Any:
    """What ``node script`` prints as JSON when given ``data`` as JSON on stdin; fails the test with
    Node's error output when the script exits with an error or runs past NODE_TIMEOUT_SECONDS."""
    npm_required()
    result = subprocess.run(
        ["node", str(script)], input=json.dumps(data), capture_output=True, text=True, timeout=NODE_TIMEOUT_SECONDS
    )
    if result.returncode:
        pytest.fail(f"node {script.name} exited with {result.returncode}:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout)
