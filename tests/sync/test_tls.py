"""HTTPS to the hub: a certificate signed by a CA the system does not know is refused, and accepted once the
spoke is enrolled with that CA's bundle (stored, and used for every later sync)."""

from __future__ import annotations

import datetime
import ipaddress
import threading
import time

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spoke_client.services.sync_local import EnrolmentFailed, enroll, sync_once
from sync.hub.app import create_app
from tests.sync.conftest import ADMIN_TOKEN, free_port
from tests.sync.test_engine import queued_case


def make_ca_and_server_cert(folder):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "District Health Society test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {name: folder / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


@pytest.fixture
def https_hub(hub, tmp_path):
    pem = make_ca_and_server_cert(tmp_path)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(hub, ADMIN_TOKEN), host="127.0.0.1", port=port, log_level="warning",
                                           ssl_certfile=str(pem["cert"]), ssl_keyfile=str(pem["key"])))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield f"https://127.0.0.1:{port}", pem["ca"]
    server.should_exit = True
    thread.join(10)


def test_https_with_a_configured_ca_bundle(hub, https_hub, facilities, spoke):
    url, ca = https_hub
    services, admin, paths = spoke("pc1")
    with pytest.raises(EnrolmentFailed) as refused:
        enroll(services.store, paths, url, hub.enroll_code(facilities[0]), "PC-1")
    assert "could not be reached" in refused.value.message and "CERTIFICATE_VERIFY_FAILED" in refused.value.message
    with pytest.raises(EnrolmentFailed) as missing:
        enroll(services.store, paths, url, hub.enroll_code(facilities[0]), "PC-1", ca_bundle=str(ca) + ".nope")
    assert "does not exist" in missing.value.message
    enroll(services.store, paths, url, hub.enroll_code(facilities[0]), "PC-1", ca_bundle=str(ca))
    queued_case(services, admin)
    report = sync_once(services.store, paths)
    assert report.ok and report.pushed > 0
