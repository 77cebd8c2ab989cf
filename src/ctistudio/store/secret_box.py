"""Secrets saved in the Settings page are stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256).

The key lives in a file beside the data (``CTISTUDIO_SECRETS_KEY_FILE``, default
``$CTISTUDIO_DATA_DIR/secrets.key``), created readable by its owner only (0600) the first time a secret is
saved. A copy of the database alone — a backup, a PostgreSQL dump — then holds no usable key. Every
process that reads the overrides needs the same file (on a team server: copy it to each host, or point
the variable at a shared path); a value it cannot decrypt is left out with a warning, as if it were not
saved, so the setting falls back to env/.env until someone enters it again.

Values saved before encryption existed are read as they are and encrypted at their next save.
"""

from __future__ import annotations

import logging
import os
import threading
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ctistudio.config import Settings, env_name

log = logging.getLogger(__name__)

PREFIX = "enc:fernet:"


def is_secret_setting(key: str) -> bool:
    """Whether an override key (field name or env name) is a secret (a ``SecretStr`` field)."""
    for name, info in Settings.model_fields.items():
        if key == name or key.upper() == env_name(name).upper():
            annotation = info.annotation
            return annotation is SecretStr or SecretStr in typing.get_args(annotation)
    return False


def key_file_for(settings: Settings) -> Path:
    return (settings.secrets_key_file or settings.data_dir / "secrets.key").expanduser()


class SecretBox:
    """Encrypts and decrypts saved secrets with the key in ``key_file`` (created on first encryption)."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: Any = None
        self._lock = threading.Lock()

    def seal(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with every secret's value encrypted (``None``, meaning "remove", stays ``None``)."""
        return {key: self._seal_one(key, value) for key, value in values.items()}

    def _seal_one(self, key: str, value: Any) -> Any:
        return self._encrypt(value) if isinstance(value, str) and value and is_secret_setting(key) else value

    def open(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with every encrypted value decrypted; one that cannot be is left out (logged)."""
        out = {}
        for key, value in values.items():
            if isinstance(value, str) and value.startswith(PREFIX):
                plain = self._decrypt(key, value)
                if plain is None:
                    continue
                value = plain
            out[key] = value
        return out

    def _encrypt(self, text: str) -> str:
        return PREFIX + self._key(create=True).encrypt(text.encode()).decode()

    def _decrypt(self, key: str, value: str) -> str | None:
        from cryptography.fernet import InvalidToken

        fernet = self._key(create=False)
        if fernet is None:
            log.warning("saved secret %s ignored: the key file %s is missing", key, self.key_file)
            return None
        try:
            return fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            log.warning("saved secret %s ignored: %s is not the key it was saved with", key, self.key_file)
            return None

    def _key(self, *, create: bool) -> Any:
        from cryptography.fernet import Fernet

        with self._lock:
            if self._fernet is not None:
                return self._fernet
            if not self.key_file.is_file():
                if not create:
                    return None
                self._write_new_key(Fernet.generate_key())
            self._fernet = Fernet(self.key_file.read_bytes().strip())
            return self._fernet

    def _write_new_key(self, key: bytes) -> None:
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key + b"\n")
        log.info("created %s: the key of the secrets saved in the Settings page (keep it with the data)", self.key_file)
