"""Recognise files and values that must never be packed into an archive or baked into an image."""

from __future__ import annotations

import fnmatch
import re

# File names (matched case-insensitively against the base name) that usually hold credentials.
SECRET_FILE_PATTERNS = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.crt.key",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    ".netrc", ".npmrc", ".pypirc", ".git-credentials", ".dockerconfigjson",
    "credentials", "credentials.json", "*service-account*.json", "secrets.yaml", "secrets.yml",
    "secrets.json", "*.kdbx",
)

# Names of files and folders that are local state or tooling, skipped without a warning.
JUNK_NAMES = frozenset({
    ".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    ".venv", "venv", "node_modules", ".kdeps", ".DS_Store", "Thumbs.db",
})
JUNK_SUFFIXES = (".pyc", ".pyo", ".kdeps", ".swp", "~")

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE|AUTH(?!OR))",
                          re.IGNORECASE)
_SECRET_VALUE = re.compile(
    r"^(sk-|sk_live_|rk_live_|ghp_|gho_|ghs_|github_pat_|glpat-|xox[abpr]-|AKIA[0-9A-Z]{12}|AIza|hf_"
    r"|ya29\.|eyJ[A-Za-z0-9_-]{10,}\.)|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)


def is_secret_file(name: str) -> bool:
    """True when a file's base name looks like it holds credentials (.env, keys, certificates...)."""
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, pattern) for pattern in SECRET_FILE_PATTERNS)


def is_junk(name: str) -> bool:
    """True for caches, VCS folders and local state that never belong in a package."""
    return name in JUNK_NAMES or name.endswith(JUNK_SUFFIXES)


def is_secret_env(name: str, value: str | None) -> bool:
    """True when an environment variable looks like a credential, by its name or by its value."""
    return bool(_SECRET_NAME.search(name)) or bool(value and _SECRET_VALUE.search(value.strip()))
