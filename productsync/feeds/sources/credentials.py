"""Named credentials of remote sources: PRODUCTSYNC["CREDENTIALS"][NAME], checked for shape
and kept out of every message."""

from dataclasses import dataclass

from productsync.conf import app_settings
from productsync.exceptions import SourceError

# Each key of an entry and the types its value may have.
CREDENTIAL_KEYS: dict[str, tuple[type, ...]] = {
    "username": (str,),
    "password": (str,),
    "key_file": (str,),
    "known_hosts": (str,),
    "endpoint_url": (str,),
    "region": (str,),
    "access_key": (str,),
    "secret_key": (str,),
    # False skips checking a TLS certificate (FTPS, an S3 endpoint); a string names a CA bundle.
    "verify": (bool, str),
}
SECRET_KEYS = ("password", "access_key", "secret_key")


@dataclass(frozen=True)
class Credentials:
    """One entry, every key present (None where the entry does not say)."""

    username: str | None = None
    password: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    verify: bool | str = True

    def scrub(self, message: str) -> str:
        """The message with every secret of this entry replaced by ***."""
        for key in SECRET_KEYS:
            secret = getattr(self, key)
            if secret:
                message = message.replace(secret, "***")
        return message


def credentials_errors(setting: object) -> list[str]:
    """What is wrong with the shape of the CREDENTIALS setting: one line each."""
    if not isinstance(setting, dict):
        return ["must be a dict of names to dicts"]
    errors = []
    for name, entry in setting.items():
        if not isinstance(name, str) or not isinstance(entry, dict):
            errors.append(f"{name!r} must be a name (a string) mapped to a dict")
            continue
        for key in sorted(set(entry) - set(CREDENTIAL_KEYS), key=str):
            errors.append(f"{name!r} has an unknown key {key!r}")
        for key, kinds in CREDENTIAL_KEYS.items():
            value = entry.get(key)
            if key in entry and not isinstance(value, kinds):
                allowed = " or ".join(kind.__name__ for kind in kinds)
                errors.append(f"{name!r}: {key} must be a {allowed}")
    return errors


def credentials_get(name: str | None) -> Credentials:
    """The entry called name (an empty one without a name); SourceError when there is none."""
    if not name:
        return Credentials()
    known = app_settings.CREDENTIALS
    entry = known.get(name) if isinstance(known, dict) else None
    if not isinstance(entry, dict):
        names = ", ".join(sorted(known)) if isinstance(known, dict) and known else "none"
        raise SourceError(
            f"no credentials named {name!r} in PRODUCTSYNC['CREDENTIALS'] (known: {names})"
        )
    return Credentials(**{key: entry[key] for key in CREDENTIAL_KEYS if key in entry})
