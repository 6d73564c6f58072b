"""One rule for a tool call's arguments, whichever backend the call came from."""

from __future__ import annotations

from typing import Any

import pytest

from kdeps.llm.backends.base import tool_arguments
from kdeps.llm.errors import InvalidResponseError


@pytest.mark.parametrize(("raw", "expected"), [
    ({"city": "Paris"}, {"city": "Paris"}),  # Ollama, Gemini, Mistral: an object
    ('{"city": "Paris"}', {"city": "Paris"}),  # OpenAI, Cohere, Anthropic's streamed input: JSON text
    (None, {}),
    ("", {}),
    ("  ", {}),
])
def test_accepted(raw: Any, expected: dict[str, Any]) -> None:
    assert tool_arguments("openai", "weather", raw) == expected


@pytest.mark.parametrize(("raw", "problem"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('"Paris"', "not a JSON object"),
    (42, "not valid JSON"),
])
def test_refused_as_the_models_mistake(raw: Any, problem: str) -> None:
    with pytest.raises(InvalidResponseError, match=problem) as info:
        tool_arguments("cohere", "weather", raw)
    assert info.value.backend == "cohere" and "'weather'" in info.value.message
    assert info.value.retryable
