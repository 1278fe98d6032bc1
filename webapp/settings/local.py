"""One machine (make run, and any entry point that names no settings): a generated secret kept in
NETFORGE_HOME; DEBUG off unless set (DEBUG=1 for tracebacks in pages), as in production."""

import os
import secrets

from webapp.settings.base import *  # noqa: F403
from webapp.settings.base import NETFORGE_HOME, env_bool

DEBUG = env_bool("DEBUG", False)
if not SECRET_KEY:  # noqa: F405
    key_file = NETFORGE_HOME / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        os.chmod(key_file, 0o600)
    SECRET_KEY = key_file.read_text().strip()
