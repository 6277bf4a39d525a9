"""A certificate authority and broker certificate of the stack's own, for `kafka.security: sasl_ssl`.

Made once per stack with the `openssl` command line, kept in the stack's state directory (keys 0600,
never in the repository). Clients trust only `ca.pem`; the broker certificate names the bind address.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from streamctl.errors import PreflightError, StartupError

DAYS = 825  # the longest validity clients accept for a server certificate


@dataclass(frozen=True)
class TlsFiles:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def broker_keystore(self) -> Path:
        """The broker's PKCS#8 key followed by its certificate: a Kafka PEM keystore."""
        return self.dir / "broker.pem"

    def exists(self) -> bool:
        return self.ca_cert.is_file() and self.broker_keystore.is_file()


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StartupError(f"openssl {args[0]} failed while making the stack's certificates",
                           details=result.stderr[-1500:], hint=f"remove {cwd} and run `streamctl up` again")


_making = threading.Lock()  # brokers prepare in threads, and umask is per process


def ensure_tls(directory: Path, host: str) -> TlsFiles:
    """The stack's CA and a broker certificate for `host` (an IP address); made when missing, once."""
    with _making:
        return _ensure_tls(directory, host)


def _ensure_tls(directory: Path, host: str) -> TlsFiles:
    files = TlsFiles(directory)
    if files.exists():
        return files
    if shutil.which("openssl") is None:
        raise PreflightError("kafka.security sasl_ssl needs the openssl command to make the stack's certificates",
                             hint="apt-get install openssl, or set kafka.security: plaintext")
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tls-", dir=directory.parent))  # 0700
    try:
        _make(scratch, host)
        try:
            scratch.rename(directory)
        except OSError:  # another broker's won; theirs is as good
            pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not files.exists():
        raise StartupError(f"{directory} holds no certificates", hint=f"remove {directory} and run `streamctl up` again")
    return files


def _make(directory: Path, host: str) -> None:
    old_umask = os.umask(0o077)
    try:
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(DAYS), "-subj", "/CN=streamctl stack CA",
                 "-keyout", "ca.key", "-out", "ca.pem", cwd=directory)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=streamctl kafka", "-keyout", "broker.key",
                 "-out", "broker.csr", cwd=directory)
        names = sorted({f"IP:{host}", "IP:127.0.0.1", "DNS:localhost"})
        (directory / "broker.ext").write_text(f"subjectAltName={','.join(names)}\n"
                                              "extendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", str(DAYS), "-extfile", "broker.ext", "-out", "broker.crt", cwd=directory)
        # PKCS#8, unencrypted: what Kafka's PEM keystore reads without a key password.
        _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.pk8", cwd=directory)
        (directory / "broker.pem").write_text((directory / "broker.pk8").read_text()
                                              + (directory / "broker.crt").read_text())
        for leftover in ("broker.csr", "broker.ext", "broker.key", "broker.pk8", "ca.srl"):
            (directory / leftover).unlink(missing_ok=True)
    finally:
        os.umask(old_umask)
    (directory / "ca.pem").chmod(0o644)  # public: every client reads it
