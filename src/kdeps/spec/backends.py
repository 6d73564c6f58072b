"""Names of the LLM backends a `chat` resource may use. Defined once here; other packages import it."""

from __future__ import annotations

BACKENDS: tuple[str, ...] = (
    "ollama",
    "openai",
    "anthropic",
    "google",
    "cohere",
    "mistral",
    "together",
    "perplexity",
    "groq",
    "deepseek",
    "gguf",
)

# A chat resource without `backend` talks to Ollama.
DEFAULT_BACKEND = "ollama"
