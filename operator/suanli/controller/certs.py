"""TLS for the validating webhook: a CA and serving certificate per replica, made and rotated with
``cryptography``, or the files cert-manager mounts.

Why a CA of its own per replica, in memory: the operator's ServiceAccount may not read Secrets
(a Secret holding a shared CA key would need exactly that), and every replica serves the
webhook, not only the Lease holder. So each replica makes its own short-lived CA, signs its own
serving certificate with it, and *appends* its CA certificate to the caBundle of the
ValidatingWebhookConfiguration, pruning certificates that have expired. The apiserver then
trusts whichever replica the Service picks. A replica that dies leaves its CA behind until it
expires (``CA_LIFETIME``); nothing it signed can be used after that, because its key died with it.

Why not ``kopf[dev]``'s self-signed certificates: they need ``certbuilder``/``oscrypto``, which
breaks on OpenSSL >= 3.0.10.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = datetime.timedelta(days=7)
SERVING_LIFETIME = datetime.timedelta(days=2)
RENEW_AT = 2 / 3
"""A certificate is replaced once this share of its lifetime has passed."""
MAX_BUNDLE = 32
"""At most this many CA certificates stay in caBundle (newest kept), whatever their expiry."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class ServingPair:
    """One replica's CA and the serving certificate it signed."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    not_before: datetime.datetime
    not_after: datetime.datetime

    def renew_after(self) -> datetime.datetime:
        return self.not_before + (self.not_after - self.not_before) * RENEW_AT


def _names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def service_hosts(service: str, namespace: str) -> list[str]:
    """The names the apiserver uses for a Service-based clientConfig."""
    return [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def make_pair(hosts: Sequence[str], now: datetime.datetime | None = None) -> ServingPair:
    """A fresh CA and a serving certificate for ``hosts`` (DNS names or IP addresses)."""
    start = (now or _now()) - datetime.timedelta(minutes=5)  # tolerate clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"suanli-webhook-ca-{os.getpid()}")]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    end = start + SERVING_LIFETIME
    serving = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ServingPair(_pem(ca), _pem(serving), key_pem, start, end)


def merge_bundle(
    bundle: bytes, add: Iterable[bytes], now: datetime.datetime | None = None
) -> bytes:
    """``bundle`` with the certificates of ``add`` appended and expired (or unreadable) ones
    dropped; at most ``MAX_BUNDLE`` certificates, the latest-expiring kept."""
    moment = now or _now()
    certs: dict[bytes, x509.Certificate] = {}
    for pem in (bundle, *add):
        try:
            loaded = x509.load_pem_x509_certificates(pem) if pem.strip() else []
        except ValueError:
            continue
        for cert in loaded:
            if cert.not_valid_after_utc > moment:
                certs[cert.fingerprint(hashes.SHA256())] = cert
    kept = sorted(certs.values(), key=lambda c: c.not_valid_after_utc)[-MAX_BUNDLE:]
    return b"".join(_pem(c) for c in kept)


def load_context(
    cert_pem: bytes, key_pem: bytes, context: ssl.SSLContext | None = None
) -> ssl.SSLContext:
    """A server context holding the pair (or ``context`` with the pair swapped in: connections
    accepted from then on use it, open ones keep theirs)."""
    if context is None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain reads files only; a private directory that lives for one call.
    with tempfile.TemporaryDirectory(prefix="suanli-webhook-") as directory:
        cert_file, key_file = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        cert_file.write_bytes(cert_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


def mounted_pair(directory: Path) -> tuple[bytes, bytes] | None:
    """cert-manager mode: tls.crt and tls.key from the mounted Secret, if both are there."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    if cert.is_file() and key.is_file():
        return cert.read_bytes(), key.read_bytes()
    return None
