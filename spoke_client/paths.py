"""Where Spoke keeps its data: the per-user data folder (platformdirs), or --data-dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class DataPaths:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "spoke.sqlite"

    @property
    def keyslots(self) -> Path:
        """The database key, wrapped once per user and once by the recovery key (services/keyslots.py)."""
        return self.root / "keyslots.json"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def quarantine(self) -> Path:
        return self.root / "damaged"

    @property
    def media(self) -> Path:
        """Photos, recordings and documents, each named by its SHA-256."""
        return self.root / "media"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def ensure(self) -> "DataPaths":
        """The folders, the data folder readable by this account only (POSIX; on Windows the installer's
        folder ACL applies)."""
        for p in (self.root, self.backups, self.logs):
            p.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            try:
                os.chmod(self.root, 0o700)
            except OSError:
                pass
        return self


def resolve(data_dir: str | os.PathLike | None) -> DataPaths:
    if data_dir:
        return DataPaths(Path(data_dir).expanduser().resolve())
    env = os.environ.get("SPOKE_DATA_DIR")
    if env:
        return DataPaths(Path(env).expanduser().resolve())
    return DataPaths(Path(platformdirs.user_data_dir("Spoke", "Spoke")))
