"""Unpack a Debian package without root: ``apt-get download`` then ``dpkg-deb -x``.

The tests' Pushgateway (``prometheus-pushgateway``) and the compose file's schema (from
``docker-compose``) come this way on a fresh Debian machine: nothing is installed system-wide,
the files land in a cache folder under ``.venv/`` and are reused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE_ROOT = PROJECT_ROOT / ".venv" / "debian"
FETCH_TIMEOUT = 300


class DebianToolsMissing(RuntimeError):
    """apt-get or dpkg-deb is not there: not a Debian-family machine."""


def unpacked(package: str, cache_root: Path = CACHE_ROOT) -> Path:
    """The root of ``package``'s files, unpacked into ``cache_root/package`` (once).

    Raises:
        DebianToolsMissing: No apt-get or dpkg-deb on this machine.
        RuntimeError: The download failed (its message says why).
    """
    cache = cache_root / package
    if cache.exists():
        return cache
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        raise DebianToolsMissing(f"apt-get and dpkg-deb are needed to fetch {package}")
    cache_root.mkdir(parents=True, exist_ok=True)
    download = ["apt-get", "download", "-q", package]
    with tempfile.TemporaryDirectory(dir=cache_root) as work:
        done = subprocess.run(
            download, cwd=work, capture_output=True, text=True, timeout=FETCH_TIMEOUT
        )
        if done.returncode != 0 and os.geteuid() == 0:
            # A fresh container has no package lists yet; as root they can be fetched.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=FETCH_TIMEOUT)
            done = subprocess.run(
                download, cwd=work, capture_output=True, text=True, timeout=FETCH_TIMEOUT
            )
        debs = sorted(Path(work).glob(f"{package}_*.deb"))
        if done.returncode != 0 or not debs:
            raise RuntimeError(f"apt-get download {package} failed: {done.stderr.strip()}")
        root = Path(work) / "root"
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
        os.replace(root, cache)
    return cache
