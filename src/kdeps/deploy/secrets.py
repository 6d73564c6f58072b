"""Recognise files and values that must never be packed into an archive or baked into an image."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

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


# user:password@ (or token@) in a URL: the credentials would be readable in the image's ENV lines.
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@]+@")
# Keys whose literal value is a credential in a workflow or resource (compared lower-cased).
_CREDENTIAL_KEYS = frozenset({"apikey", "api_key", "token", "password", "secret", "clientsecret",
                              "authorization", "proxy-authorization", "x-api-key", "api-key"})
_SCHEME_VALUE = re.compile(r"^(Bearer|Basic|token)\s+\S{8,}$", re.IGNORECASE)


def is_secret_file(name: str) -> bool:
    """True when a file's base name looks like it holds credentials (.env, keys, certificates...)."""
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, pattern) for pattern in SECRET_FILE_PATTERNS)


def is_junk(name: str) -> bool:
    """True for caches, VCS folders and local state that never belong in a package."""
    return name in JUNK_NAMES or name.endswith(JUNK_SUFFIXES)


def is_secret_env(name: str, value: str | None) -> bool:
    """True when an environment variable looks like a credential, by its name or by its value."""
    return bool(_SECRET_NAME.search(name)) or bool(value and (_SECRET_VALUE.search(value.strip())
                                                          or _URL_CREDENTIALS.search(value)))


def has_url_credentials(value: str) -> bool:
    """True when `value` holds a URL with user info (`https://user:pass@host`)."""
    return bool(_URL_CREDENTIALS.search(value))


def _is_literal(value: str) -> bool:
    text = value.strip()
    return bool(text) and "{{" not in text and not text.startswith(("get(", "${", "$"))


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, str, Any]]:
    """(dotted path, key, string value, parent mapping) of every string in a YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(value, str):
                yield child, str(key), value, node
            else:
                yield from _walk(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str):
                yield f"{path}[{i}]", "", value, None
            else:
                yield from _walk(value, f"{path}[{i}]")


def literal_secrets(root: Path, files: list[str]) -> list[str]:
    """Warnings for credentials written literally in an agent's YAML files: API keys and tokens
    (by key name or by their look) and URLs with user info. `agentSettings.env`/`args` are left to
    the build plan, which already moves those to run time."""
    found: list[str] = []
    for rel in files:
        if not rel.endswith((".yaml", ".yml")):
            continue
        try:
            documents = list(yaml.safe_load_all((root / rel).read_text(errors="replace")))
        except (OSError, yaml.YAMLError):
            continue
        for document in documents:
            for where, key, value, parent in _walk(document, ""):
                if ".agentSettings.env." in f".{where}" or ".agentSettings.args." in f".{where}":
                    continue
                lower = key.lower()
                api_key_value = lower == "value" and isinstance(parent, dict) \
                    and parent.get("type") == "api_key"
                if not _is_literal(value):
                    continue
                if lower in _CREDENTIAL_KEYS or api_key_value or _SECRET_VALUE.search(value.strip()) \
                        or _SCHEME_VALUE.match(value.strip()):
                    found.append(f"{rel}: {where} holds a literal credential; read it from the environment "
                                 "instead (e.g. \"{{ get('MY_KEY', 'env') }}\") and pass it at run time")
                elif _URL_CREDENTIALS.search(value):
                    found.append(f"{rel}: {where} holds a URL with a user name or password; read it from the "
                                 "environment instead and pass it at run time")
    return found
