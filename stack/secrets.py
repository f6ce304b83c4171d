"""The secrets the running assistant needs, kept outside the repository.

- RASA_AUTH_TOKEN: guards Rasa's HTTP API (never run open: CVE-2024-49375). Only server-side
  code (the staff pages) holds it; browsers never see it.
- STAFF_PASSWORD: the staff pages' login.

Each comes from the environment if set there; otherwise from the secrets file
($CLINIC_SECRETS_FILE, default ~/.config/clinic-assistant/secrets.env), where a random value
is generated the first time (`make run` prints the staff password then). There is no default
password in code.
"""
import os
import secrets
from pathlib import Path
from typing import Dict, Tuple

NAMES = ("RASA_AUTH_TOKEN", "STAFF_PASSWORD")


def secrets_file() -> Path:
    default = Path.home() / ".config" / "clinic-assistant" / "secrets.env"
    return Path(os.environ.get("CLINIC_SECRETS_FILE", default))


def _read(path: Path) -> Dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def load() -> Tuple[Dict[str, str], bool]:
    """Returns the secrets, and whether a new staff password was just generated."""
    path = secrets_file()
    stored = _read(path)
    missing = [name for name in NAMES if not os.environ.get(name) and not stored.get(name)]
    if missing:
        for name in missing:
            stored[name] = secrets.token_urlsafe(24)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in sorted(stored.items())))
        path.chmod(0o600)
    values = {name: os.environ.get(name) or stored[name] for name in NAMES}
    return values, "STAFF_PASSWORD" in missing
