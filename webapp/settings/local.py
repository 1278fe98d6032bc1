"""Development on one machine (make run): DEBUG on, a generated secret kept in NETFORGE_HOME."""

import os
import secrets

from webapp.settings.base import *  # noqa: F403
from webapp.settings.base import NETFORGE_HOME, env_bool

DEBUG = env_bool("DEBUG", True)
if not SECRET_KEY:  # noqa: F405
    key_file = NETFORGE_HOME / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        os.chmod(key_file, 0o600)
    SECRET_KEY = key_file.read_text().strip()
