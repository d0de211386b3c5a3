"""Certificates for a loopback control plane, made with `cryptography` (no openssl, no cfssl).

One CA signs the apiserver's serving certificate and the client certificates that components and
people use; a separate RSA key pair signs service-account tokens. Everything is written once into
the cluster's state directory and reused on later starts of the same directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)
# Where the apiserver listens when the centre has a real node (netns.API_ADDRESS; kept here as a
# literal so the PKI does not import the network code).
REAL_NODE_API_ADDRESS = "10.250.0.1"


@dataclass(frozen=True)
class Pki:
    """Paths of every credential the control plane needs."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.directory / "sa.pub"

    def client_cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def client_key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server_names: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        )
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names:
        sans: list[x509.GeneralName] = []
        for entry in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(entry)))
            except ValueError:
                sans.append(x509.DNSName(entry))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _names_serving_address(path: Path) -> bool:
    """Certificates made before the real node existed lack its apiserver address: remake them."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    wanted = ipaddress.ip_address(REAL_NODE_API_ADDRESS)
    return wanted in sans.get_values_for_type(x509.IPAddress)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_pki(directory: Path, clients: dict[str, str | None]) -> Pki:
    """Create (once) the CA, serving cert, service-account keys and the named client certs.

    ``clients`` maps a user name to its group (e.g. ``{"admin": "system:masters"}``).
    """
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not pki.ca_cert.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("suanli-local-ca")
        _write_key(pki.ca_key, ca_key)
        _write_cert(pki.ca_cert, _sign(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True))
    ca_key_loaded = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key_loaded, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    if not pki.serving_cert.exists() or not _names_serving_address(pki.serving_cert):
        key = ec.generate_private_key(ec.SECP256R1())
        names = (
            "127.0.0.1",
            REAL_NODE_API_ADDRESS,
            "10.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
        cert = _sign(
            _name("kube-apiserver"),
            key.public_key(),
            ca_cert.subject,
            ca_key_loaded,
            server_names=names,
        )
        _write_key(pki.serving_key, key)
        _write_cert(pki.serving_cert, cert)
    if not pki.sa_key.exists():
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(pki.sa_key, sa_key)
        pki.sa_pub.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    for user, group in clients.items():
        if pki.client_cert(user).exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _sign(
            _name(user, group), key.public_key(), ca_cert.subject, ca_key_loaded, client=True
        )
        _write_key(pki.client_key(user), key)
        _write_cert(pki.client_cert(user), cert)
    return pki
