"""The secret that proves a model file was written by this deployment (HMAC-SHA256).

A checksum beside the model proves integrity only: whoever can write the data dir (an NFS
share in scale-out mode) can write a pickle and a matching checksum, and unpickling runs their
code. So ``current.json`` carries an HMAC of the model file under a key that does *not* live in
the data dir, and nothing is unpickled unless it verifies.

The key is ``LABELQUEUE_MODEL_KEY`` if set, else the contents of ``LABELQUEUE_MODEL_KEY_FILE``
(default ``$XDG_CONFIG_HOME/labelqueue/model.key``, i.e. ``~/.config/labelqueue/model.key``),
which is created with 32 random bytes and mode 0600 at first start. Every process that trains
or serves one data dir (gunicorn workers, RQ workers on other machines) needs the same key.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from backend.layout import make_private_dirs
from backend.settings import Settings, SettingsError

MIN_KEY_BYTES = 16


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "labelqueue" / "model.key"


def model_key(settings: Settings) -> bytes:
    """The configured key; the key file is created on first use. Refuses a key inside the data dir."""
    if settings.model_key:
        return settings.model_key.encode()
    path = (settings.model_key_file or default_key_file()).expanduser().resolve()
    data_dir = Path(settings.data_dir).expanduser().resolve()
    if path == data_dir or data_dir in path.parents:
        raise SettingsError(f"LABELQUEUE_MODEL_KEY_FILE={path} is inside LABELQUEUE_DATA_DIR; the key must live "
                            "elsewhere, or anyone who can write the data dir can sign a model")
    if not path.exists():
        make_private_dirs(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise SettingsError(f"LABELQUEUE_MODEL_KEY_FILE={path} cannot be read: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise SettingsError(f"LABELQUEUE_MODEL_KEY_FILE={path} holds fewer than {MIN_KEY_BYTES} bytes")
    return key


def sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def verifies(key: bytes, payload: bytes, signature: object) -> bool:
    return isinstance(signature, str) and hmac.compare_digest(sign(key, payload), signature)
