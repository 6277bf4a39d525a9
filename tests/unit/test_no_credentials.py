"""No credential literal in the repository: passwords are generated per stack at `up`."""

from __future__ import annotations

import re
import subprocess

from streamctl.paths import PROJECT_ROOT

SUSPICIOUS = [
    re.compile(r"""(?i)\b(password|passwd|pwd|secret|token)\b\s*[:=]\s*["'][^"'\s{}$<>]{4,}["']"""),
    # unquoted, as in YAML, .env and compose files: POSTGRES_PASSWORD: postgres, ELASTIC_PASSWORD=changeme
    re.compile(r"""(?i)\b\w*(?:password|passwd|secret|token)\b\s*[:=][ \t]*(?!\$|<|\{)[A-Za-z0-9!@#%^&*+\-]{4,}[ \t]*(?:#.*)?$""",
               re.M),
    # Flink SQL and JDBC options: 'password' = 'x'
    re.compile(r"""(?i)'(?:[\w.-]*\.)?password'\s*=\s*'[^'{}$]+'"""),
    re.compile(r"(?i)postgres(?:ql)?://[^:/\s]+:[^@/\s{}$]+@"),
    re.compile(r"(?i)\bPGPASSWORD=[^\s$]+"),
    re.compile(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----"),
]


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if not f.endswith((".lock", ".png"))]


def test_no_credential_literals_in_tracked_files():
    findings = []
    for name in tracked_files():
        if name == "tests/unit/test_no_credentials.py":
            continue
        try:
            text = (PROJECT_ROOT / name).read_text()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for pattern in SUSPICIOUS:
            for match in pattern.finditer(text):
                findings.append(f"{name}: {match.group(0)[:60]}")
    assert findings == []


def test_the_scanner_catches_what_it_should():
    samples = ['password = "hunter22"', "postgresql://user:hunter22@host/db", "PGPASSWORD=hunter22",
               "secret: 'abcd1234'", "POSTGRES_PASSWORD: postgres", "  password: hunter22", "ELASTIC_PASSWORD=changeme",
               "'password' = 'x'", "'properties.sasl.password' = 'hunter22'"]
    for sample in samples:
        assert any(p.search(sample) for p in SUSPICIOUS), sample
    for harmless in ("password = ctx.secrets.postgres_password", "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}",
                     "'password' = {sql_string(cfg['jdbc_password'])}", "password: str = field(default='')"):
        assert not any(p.search(harmless) for p in SUSPICIOUS), harmless
