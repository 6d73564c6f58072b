"""The backends kdeps ships, one declaration each: name, key variable, default URL, capabilities.

Every other place reads these rows: each backend class carries its own (`declaration`), spec
validation takes the names, the registry finds the class through `module`, the Docker planner asks
`runs`, and the README's backend table is rendered by `markdown_table()`. This module imports only
the standard library, so `kdeps validate` never loads a backend or aiohttp.

Run `python -m kdeps.llm.catalog` to print the README table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

JsonMode = Literal["response_format", "format", "forced_tool", "response_mime_type", "grammar"]
"""How a backend is asked for a JSON answer: OpenAI's `response_format`, Ollama's `format`, a tool
the model must call (Anthropic), Gemini's `responseMimeType`, or a llama.cpp grammar."""

Runs = Literal["remote", "ollama", "in_process"]
"""Where the model runs: a provider's API, an Ollama server (Docker images ship one), or inside the
kdeps process (Docker images build llama.cpp)."""


@dataclass(frozen=True, slots=True)
class Declaration:
    """What a backend is, independent of its wire format."""

    name: str
    module: str
    """The module under `kdeps.llm.backends` whose class carries this declaration."""
    env_var: str | None
    """The environment variable holding the API key; None when no key is needed."""
    default_url: str
    json_mode: JsonMode
    tools: bool = True
    images: bool = True
    streaming: bool = True
    runs: Runs = "remote"
    default_model: str | None = None
    """The model used when a chat block names none; None: the block must name one."""
    aliases: tuple[str, ...] = ()
    """Other names `KDEPS_DEFAULT_BACKEND` may give it (upstream's names for the same backend)."""


DEFAULT_BACKEND = "ollama"
"""The backend of a chat resource that names none."""

DECLARATIONS: tuple[Declaration, ...] = (
    Declaration("ollama", "ollama", None, "http://localhost:11434", "format", runs="ollama"),
    Declaration("openai", "openai_compat", "OPENAI_API_KEY", "https://api.openai.com", "response_format"),
    Declaration("anthropic", "anthropic", "ANTHROPIC_API_KEY", "https://api.anthropic.com", "forced_tool"),
    Declaration("google", "google", "GOOGLE_API_KEY", "https://generativelanguage.googleapis.com",
                "response_mime_type"),
    Declaration("cohere", "cohere", "COHERE_API_KEY", "https://api.cohere.ai", "response_format"),
    Declaration("mistral", "openai_compat", "MISTRAL_API_KEY", "https://api.mistral.ai", "response_format"),
    Declaration("together", "openai_compat", "TOGETHER_API_KEY", "https://api.together.xyz",
                "response_format"),
    Declaration("perplexity", "openai_compat", "PERPLEXITY_API_KEY", "https://api.perplexity.ai",
                "response_format"),
    Declaration("groq", "openai_compat", "GROQ_API_KEY", "https://api.groq.com", "response_format"),
    Declaration("deepseek", "openai_compat", "DEEPSEEK_API_KEY", "https://api.deepseek.com",
                "response_format", images=False),
    Declaration("gguf", "gguf", None, "", "grammar", tools=False, images=False, runs="in_process",
                default_model="smollm2:135m", aliases=("file", "llamafile")),
)
"""In the seed's order, the embedded `gguf` last."""

BY_NAME: dict[str, Declaration] = {d.name: d for d in DECLARATIONS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
ALIASES: dict[str, str] = {alias: d.name for d in DECLARATIONS for alias in d.aliases}


def default_backend(configured: str | None) -> str:
    """The backend of a chat block that names none: `configured` (KDEPS_DEFAULT_BACKEND) when set,
    upstream's aliases (`file` = the embedded gguf) resolved, else the default backend."""
    name = (configured or DEFAULT_BACKEND).strip().lower()
    return ALIASES.get(name, name)


def names_running(runs: Runs) -> frozenset[str]:
    """The backends whose model runs there (e.g. every backend an image's Ollama serves)."""
    return frozenset(d.name for d in DECLARATIONS if d.runs == runs)


def markdown_table() -> str:
    """The README's backend table, rendered from the declarations."""
    rows = ["| backend | default URL | key | JSON mode | tools | images | streaming |",
            "|---|---|---|---|---|---|---|"]
    for d in DECLARATIONS:
        name = f"`{d.name}`" + (" (default)" if d.name == DEFAULT_BACKEND else "")
        url = f"`{d.default_url}`" if d.default_url else "in-process llama.cpp"
        key = f"`{d.env_var}`" if d.env_var else "—"
        flags = ["yes" if flag else "no" for flag in (d.tools, d.images, d.streaming)]
        rows.append(f"| {name} | {url} | {key} | `{d.json_mode}` | " + " | ".join(flags) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
