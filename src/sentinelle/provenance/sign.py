"""Sign what you generate: add a C2PA manifest saying "made by generative AI".

For generation services that want their outputs recognisable downstream::

    sentinelle provenance sign out.png signed.png --cert chain.pem --key key.pem \\
        --software-agent "MyDiffusion 2.1" --watermark

The manifest holds one ``c2pa.actions`` assertion with a ``c2pa.created`` action,
``digitalSourceType`` = IPTC ``trainedAlgorithmicMedia`` and the ``softwareAgent``;
the claim generator is Sentinelle. ``--watermark`` first embeds the SDXL-compatible
invisible watermark (48 bits ``0xB3EC907BB19E``, DWT-DCT; from
:func:`sentinelle.provenance.watermark.embed_sdxl`), so the mark survives a metadata
strip that removes the manifest.

Certificates: C2PA refuses self-signed signing certificates. ``--cert`` is a PEM chain
that starts with the end-entity certificate (``digitalSignature`` key usage, an extended
key usage such as ``emailProtection``, ``documentSigning`` or C2PA claim signing, not a
CA) followed by the intermediates; the root goes in the verifiers' trust anchors.
:func:`make_test_chain` writes such a chain for tests and demos (never for production).

Signing runs offline: no time-stamp authority is contacted unless ``tsa_url`` is given.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from .c2pa_reader import IPTC_PREFIX
from .errors import ProvenanceError

ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")

SIGNABLE_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "tiff": "image/tiff",
    "gif": "image/gif",
    "heic": "image/heic",
    "avif": "image/avif",
}

MAX_SIGN_BYTES = 256 * 1024 * 1024


def manifest_definition(software_agent: str, title: str | None = None) -> dict:
    """The manifest we sign: one ``c2pa.created`` action from trained algorithmic media."""
    return {
        "claim_generator_info": [{"name": "Sentinelle", "version": __version__}],
        "title": title or "generated image",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": IPTC_PREFIX + "trainedAlgorithmicMedia",
                            "softwareAgent": {"name": software_agent},
                        }
                    ]
                },
            }
        ],
    }


def _media_type(data: bytes) -> tuple[str, str]:
    from .analyze import media_type_of

    mt = media_type_of(data)
    fmt = mt.split("/", 1)[1] if mt else None
    if fmt not in SIGNABLE_TYPES:
        raise ProvenanceError(
            f"cannot sign {fmt or 'unrecognised'} content; signable: {', '.join(SIGNABLE_TYPES)}",
            "unsupported_format",
        )
    return fmt, SIGNABLE_TYPES[fmt]


def _check_pems(cert_pem: bytes, key_pem: bytes) -> None:
    """Fail early, with our codes, on unreadable or mismatched certificate/key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as e:
        raise ProvenanceError(f"certificate is not PEM: {e}", "bad_certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise ProvenanceError(
            f"private key is not an unencrypted PEM key: {e}", "bad_key"
        ) from None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if certs[0].public_key().public_bytes(enc, pub) != key.public_key().public_bytes(enc, pub):
        raise ProvenanceError(
            "the private key does not belong to the first certificate of the chain",
            "bad_key",
        )


def watermark_image(data: bytes, fmt: str) -> bytes:
    """Embed the SDXL watermark, re-encode in the same format (JPEG: q95, 4:4:4 chroma)."""
    from PIL import Image

    try:
        from .watermark import embed_sdxl
    except ImportError as e:  # pragma: no cover - watermark module ships with the package
        raise ProvenanceError(f"watermarking is unavailable: {e}", "sign_failed") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            marked = embed_sdxl(im.convert("RGB"))
    except ProvenanceError:
        raise
    except Exception as e:  # noqa: BLE001 - decoder/encoder failures on user input
        raise ProvenanceError(f"cannot watermark this image: {e}", "sign_failed") from None
    out = io.BytesIO()
    pil_fmt = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF"}.get(fmt)
    if pil_fmt is None:
        raise ProvenanceError(f"cannot watermark {fmt} images", "unsupported_format")
    # The mark lives in the chroma (U) channel: keep full-resolution chroma in JPEG.
    extra: dict = {}
    if pil_fmt == "JPEG":
        extra = {"quality": 95, "subsampling": 0}
    elif pil_fmt == "WEBP":
        extra = {"lossless": True}
    marked.save(out, format=pil_fmt, **extra)
    return out.getvalue()


def sign_bytes(
    data: bytes,
    *,
    cert_pem: bytes,
    key_pem: bytes,
    alg: str = "es256",
    software_agent: str = "Sentinelle",
    title: str | None = None,
    watermark: bool = False,
    tsa_url: str | None = None,
) -> bytes:
    """Return ``data`` with a signed C2PA "created by generative AI" manifest embedded."""
    import c2pa

    alg = alg.lower()
    if alg not in ALGORITHMS:
        raise ProvenanceError(
            f"unknown algorithm {alg!r}; choose from {', '.join(ALGORITHMS)}", "bad_algorithm"
        )
    if not data:
        raise ProvenanceError("input is empty", "empty_file")
    if len(data) > MAX_SIGN_BYTES:
        raise ProvenanceError(f"input is over {MAX_SIGN_BYTES} bytes", "file_too_large")
    if not software_agent.strip() or len(software_agent) > 200:
        raise ProvenanceError("software agent must be 1-200 characters", "sign_failed")
    _check_pems(cert_pem, key_pem)
    fmt, mime = _media_type(data)
    if watermark:
        data = watermark_image(data, fmt)
    definition = json.dumps(manifest_definition(software_agent.strip(), title))
    try:
        info = c2pa.C2paSignerInfo(alg, cert_pem, key_pem, tsa_url)
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(definition) as builder:
            out = io.BytesIO()
            builder.sign(signer, mime, io.BytesIO(data), out)
    except c2pa.C2paError as e:
        raise ProvenanceError(f"C2PA signing failed: {e}"[:400], "sign_failed") from None
    return out.getvalue()


def sign_file(
    src: str | Path,
    dest: str | Path,
    *,
    cert: str | Path,
    key: str | Path,
    alg: str = "es256",
    software_agent: str = "Sentinelle",
    watermark: bool = False,
    tsa_url: str | None = None,
) -> int:
    """Sign ``src`` into ``dest`` (never in place); returns the bytes written."""
    src, dest = Path(src), Path(dest)
    try:
        if src.resolve() == dest.resolve():
            raise ProvenanceError("output must differ from input", "sign_failed")
        if src.stat().st_size > MAX_SIGN_BYTES:
            raise ProvenanceError(f"input is over {MAX_SIGN_BYTES} bytes", "file_too_large")
        data = src.read_bytes()
        cert_pem = Path(cert).read_bytes()
        key_pem = Path(key).read_bytes()
    except OSError as e:
        raise ProvenanceError(f"cannot read {e.filename}: {e.strerror}", "io_error") from None
    signed = sign_bytes(
        data,
        cert_pem=cert_pem,
        key_pem=key_pem,
        alg=alg,
        software_agent=software_agent,
        title=src.name,
        watermark=watermark,
        tsa_url=tsa_url,
    )
    tmp = dest.with_name(dest.name + ".part")
    try:
        tmp.write_bytes(signed)
        tmp.replace(dest)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ProvenanceError(f"cannot write {dest}: {e.strerror}", "io_error") from None
    return len(signed)


# --- test certificates ------------------------------------------------------------------


@dataclass(frozen=True)
class CertChain:
    """Paths written by :func:`make_test_chain`."""

    root_cert: Path  # trust anchor (give to the reader)
    chain: Path  # end-entity + intermediate, for --cert
    key: Path  # end-entity private key, for --key


def make_test_chain(directory: str | Path, *, name: str = "Sentinelle Test") -> CertChain:
    """Write a root CA, an intermediate CA and a C2PA-conformant ES256 signing certificate.

    FOR TESTS AND DEMOS ONLY: the keys are unprotected files. The end-entity certificate
    has ``digitalSignature`` key usage and the ``emailProtection`` + ``documentSigning``
    extended key usages, as c2pa-rs requires.
    """
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    def subject(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            ]
        )

    def cert(
        subj: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        issuer_key: ec.EllipticCurvePrivateKey,
        ca: bool,
        path_len: int | None = None,
    ) -> x509.Certificate:
        b = (
            x509.CertificateBuilder()
            .subject_name(subj)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                False,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=not ca,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=ca,
                    crl_sign=ca,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        if not ca:
            b = b.add_extension(
                x509.ExtendedKeyUsage(
                    [
                        ExtendedKeyUsageOID.EMAIL_PROTECTION,
                        x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # documentSigning
                    ]
                ),
                critical=False,
            )
        return b.sign(issuer_key, hashes.SHA256())

    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    ee_key = ec.generate_private_key(ec.SECP256R1())
    root_name, int_name = subject(f"{name} Root CA"), subject(f"{name} Intermediate CA")
    root = cert(root_name, root_key, root_name, root_key, ca=True, path_len=1)
    inter = cert(int_name, int_key, root_name, root_key, ca=True, path_len=0)
    ee = cert(subject(f"{name} Signer"), ee_key, int_name, int_key, ca=False)

    pem = serialization.Encoding.PEM
    out = CertChain(d / "root.pem", d / "chain.pem", d / "signer.key")
    out.root_cert.write_bytes(root.public_bytes(pem))
    out.chain.write_bytes(ee.public_bytes(pem) + inter.public_bytes(pem))
    out.key.write_bytes(
        ee_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return out
