"""Credentials in the environment are read without botocore, exactly as its chain reads
them, and left to the chain in every case where it would read something else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest

from hi_async.aws.credentials import CredentialSource, from_environment
from hi_async.settings import Settings

CASES = {
    "keys": {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret"},
    "session token": {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret",
                      "AWS_SESSION_TOKEN": "session"},
    "both tokens": {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret",
                    "AWS_SESSION_TOKEN": "session", "AWS_SECURITY_TOKEN": "security"},
    "empty token": {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret",
                    "AWS_SECURITY_TOKEN": "", "AWS_SESSION_TOKEN": "session"},
}


@pytest.fixture
def bare_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AWS variable and no shared files, and no instance metadata to ask."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_environment_reads_as_botocores_chain_reads_it(
        case: str, bare_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CASES[case].items():
        monkeypatch.setenv(name, value)
    chain = botocore.session.Session().get_credentials()
    assert chain is not None
    assert from_environment(Settings()) == (chain.access_key, chain.secret_key, chain.token)


def test_left_to_the_chain_when_it_would_read_something_else(
        bare_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = CASES["keys"]
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    (bare_environment / "credentials").write_text(
        "[other]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n")
    # A named profile: the chain skips the environment and reads the profile.
    named = Settings(profile="other")
    assert from_environment(named) is None
    source = CredentialSource(named)
    source.resolve()
    assert source.frozen() == ("AKIDPROFILE", "profile-secret", None)
    # Credentials that expire are refreshable: botocore's to keep fresh.
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z")
    assert from_environment(Settings()) is None
    source = CredentialSource(Settings())
    source.resolve()
    assert source.static is None and source.frozen()[0] == "AKIDENV"
    monkeypatch.delenv("AWS_CREDENTIAL_EXPIRATION")
    # A key without its secret: botocore names the missing variable.
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert from_environment(Settings()) is None


def test_resolving_environment_credentials_loads_no_botocore(
        bare_environment: Path) -> None:
    code = ("import sys\n"
            "from hi_async.aws.credentials import CredentialSource\n"
            "from hi_async.settings import Settings\n"
            "source = CredentialSource(Settings())\n"
            "source.resolve()\n"
            "print(source.static, 'botocore.session' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **CASES["session token"]}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["('AKIDENV',", "'env-secret',", "'session')", "False"]
