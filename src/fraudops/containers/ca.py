"""Extra CA certificates for image builds: a PEM bundle split into one ``.crt`` per certificate in the
build context's ``docker/ca/`` folder, where ``update-ca-certificates`` (and, through it, Java) picks
each up."""

from __future__ import annotations

import re
from pathlib import Path

CA_FOLDER = Path("docker") / "ca"
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL)


class CaBundleError(ValueError):
    pass


def split_pem_bundle(text: str) -> list[str]:
    """Every certificate of a PEM bundle, in order; other blocks (keys, comments) are left out."""
    return [match.group(0).replace("\r\n", "\n") + "\n" for match in _PEM.finditer(text)]


def stage_ca_bundle(bundle: Path | None, folder: Path) -> int:
    """Replace the staged certificates in ``folder`` by those of ``bundle`` (none when it is None).
    Returns how many were staged."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.crt"):
        old.unlink()
    if bundle is None:
        return 0
    if not bundle.is_file():
        raise CaBundleError(f"docker.extra_ca_bundle: {bundle} is not a file")
    certificates = split_pem_bundle(bundle.read_text(errors="replace"))
    if not certificates:
        raise CaBundleError(f"docker.extra_ca_bundle: {bundle} holds no PEM certificate")
    for number, certificate in enumerate(certificates, start=1):
        (folder / f"extra-{number:03d}.crt").write_text(certificate)
    return len(certificates)
