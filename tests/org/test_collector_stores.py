"""The collector over TLS, onto S3, onto a disk that fills up, and through a shutdown."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import os
import signal
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cleartrace.org.keys import OrgKeys
from tests.support.cli import ct
from tests.support.org_device import Device
from tests.support.org_process import collector_running, leftovers
from tests.support.orgkit import aws_env


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cleartrace test collector")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_over_tls_a_device_enrols_and_uploads(tmp_path: Path, org_keys: OrgKeys) -> None:
    cert, key = self_signed(tmp_path)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with collector_running(tmp_path / "data", *tls) as c:
        assert c.url.startswith("https://127.0.0.1:")
        dev = Device(org_keys.bundle_public)
        assert dev.enroll(c.url, c.tokens()[0], verify=str(cert)).status_code == 201
        name, raw, _ = dev.bundle()
        r = dev.put(c.url, name, raw, verify=str(cert))
        assert (r.status_code, r.json()["stored"]) == (201, True)
        address = (urlsplit(c.url).hostname or "", urlsplit(c.url).port or 0)
        # The system's CAs do not know a self-signed certificate. Raw sockets closed
        # here: a connection left open would hold the collector's graceful shutdown.
        with (
            socket.create_connection(address, timeout=10) as tcp,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            ssl.create_default_context().wrap_socket(tcp, server_hostname="127.0.0.1")
        with socket.create_connection(address, timeout=10) as plain:
            plain.sendall(b"GET /v1/policy HTTP/1.1\r\nHost: x\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):
                assert b"HTTP/1.1" not in plain.recv(4096)  # plain HTTP gets no answer


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    out = ct(
        "org",
        "serve",
        "--data",
        str(tmp_path / "d"),
        "--port",
        "0",
        "--tls-cert",
        str(cert),
        check=False,
    )
    assert out.returncode == 2
    assert "--tls-key" in out.stderr


def test_onto_s3_bundles_and_heads_land_in_the_bucket(
    tmp_path: Path, org_keys: OrgKeys, s3_endpoint: str, bucket: str
) -> None:
    store = ("--store", f"s3://{bucket}/org", "--s3-endpoint", s3_endpoint)
    with collector_running(tmp_path / "data", *store, env=aws_env(s3_endpoint)) as c:
        dev = Device(org_keys.bundle_public)
        assert dev.enroll(c.url, c.tokens()[0]).status_code == 201
        r, name, raw = dev.upload(c.url)
        assert r.status_code == 201
        again = dev.put(c.url, name, raw)
        assert (again.status_code, again.json()["stored"]) == (200, False)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    assert s3.get_object(Bucket=bucket, Key=f"org/bundles/{name}.ctb")["Body"].read() == raw
    head = json.loads(s3.get_object(Bucket=bucket, Key=f"org/heads/{dev.hex}.json")["Body"].read())
    assert (head["seq"], head["hash"], head["bundle"]) == (*dev.witnessed, name)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == sorted([f"org/bundles/{name}.ctb", f"org/heads/{dev.hex}.json"])
    assert not (tmp_path / "data" / "bundles").exists()


def test_a_missing_bucket_stops_the_collector_at_start(tmp_path: Path, s3_endpoint: str) -> None:
    out = ct(
        "org", "serve", "--data", str(tmp_path / "d"), "--port", "0",
        "--store", "s3://not-created-yet/x", "--s3-endpoint", s3_endpoint,
        env=aws_env(s3_endpoint),
        check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "create the bucket" in out.stderr


def test_a_full_disk_refuses_the_bundle_whole_and_a_retry_succeeds(
    tmp_path: Path, tiny_disk: Path, org_keys: OrgKeys
) -> None:
    with collector_running(tmp_path / "data", "--store", str(tiny_disk)) as c:
        dev = Device(org_keys.bundle_public)
        assert dev.enroll(c.url, c.tokens()[0]).status_code == 201
        name, raw, head = dev.bundle(events=5000)
        free = os.statvfs(tiny_disk)
        filler = tiny_disk / "filler"
        filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - len(raw) // 2))

        r = dev.put(c.url, name, raw)
        assert (r.status_code, r.json()["reason"]) == (507, "disk-full")
        assert "Retry-After" in r.headers
        assert leftovers(tiny_disk) == []
        assert not (tiny_disk / "bundles" / f"{name}.ctb").exists()
        got = requests.get(f"{c.url}/v1/devices/{dev.hex}/head", timeout=10).json()
        assert got["seq"] == 0  # nothing witnessed for a bundle not stored

        filler.unlink()  # the operator frees space; the device's outbox sends the same bundle
        r = dev.put(c.url, name, raw)
        assert (r.status_code, r.json()["head"]["seq"]) == (201, head[0])
        assert (tiny_disk / "bundles" / f"{name}.ctb").read_bytes() == raw


def test_a_shutdown_lets_an_upload_in_flight_finish(tmp_path: Path, org_keys: OrgKeys) -> None:
    with collector_running(tmp_path / "data") as c:
        dev = Device(org_keys.bundle_public)
        assert dev.enroll(c.url, c.tokens()[0]).status_code == 201
        name, raw, _ = dev.bundle(events=2000)
        parts = urlsplit(c.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
        conn.putrequest("PUT", f"/v1/bundles/{name}")
        conn.putheader("Content-Length", str(len(raw)))
        for header, value in dev.auth(name).items():
            conn.putheader(header, value)
        conn.endheaders()
        conn.send(raw[: len(raw) // 2])
        time.sleep(0.2)  # the request is being read
        c.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the collector is shutting down, the request still open
        conn.send(raw[len(raw) // 2 :])
        response = conn.getresponse()
        assert response.status == 201
        assert json.loads(response.read())["stored"] is True
        conn.close()
        assert c.proc.wait(timeout=30) == 0
    assert (tmp_path / "data" / "bundles" / f"{name}.ctb").read_bytes() == raw
