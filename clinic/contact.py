"""The clinic's contact details, read from domain/clinic.yml, where they are written once."""
import re
from functools import lru_cache
from pathlib import Path
from typing import Dict

import yaml

DOMAIN_FILE = Path(__file__).resolve().parent.parent / "domain" / "clinic.yml"


@lru_cache(maxsize=1)
def _slots() -> Dict[str, str]:
    slots = yaml.safe_load(DOMAIN_FILE.read_text())["slots"]
    return {name: slot["initial_value"] for name, slot in slots.items()}


def clinic_phone() -> str:
    """For people to read, as in replies."""
    return _slots()["clinic_phone"]


def clinic_phone_e164() -> str:
    """In E.164 form, for tel: links and escalation payloads."""
    number = _slots()["clinic_phone_e164"]
    if not re.fullmatch(r"\+\d{8,15}", number):
        raise ValueError(f"{DOMAIN_FILE}: clinic_phone_e164 {number!r} is not an E.164 number")
    return number
