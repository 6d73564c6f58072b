"""The client conversation of /v1/chat/completions as a chat resource adopts it."""

from __future__ import annotations

from kdeps.llm.conversation import Conversation
from kdeps.llm.types import ChatRequest, Message

PAYLOAD = {"model": "x", "max_tokens": 7, "temperature": 0.3, "stop": "END",
           "response_format": {"type": "json_object"}, "messages": [
               {"role": "system", "content": "Be brief."},
               {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "42"},
               {"role": "user", "content": "And now?"}]}


def test_from_openai() -> None:
    conv = Conversation.from_openai(PAYLOAD)
    assert conv.system == ["Be brief."]
    assert [(m.role, m.content) for m in conv.messages] == [
        ("user", "Hello"), ("assistant", ""), ("tool", "42"), ("user", "And now?")]
    assert conv.messages[1].tool_calls[0].arguments == {"a": 1} and conv.messages[2].tool_call_id == "c1"
    assert (conv.max_tokens, conv.temperature, conv.stop, conv.json_mode) == (7, 0.3, ["END"], True)


def test_adopt_keeps_the_history_and_the_resource_prompt() -> None:
    conv = Conversation.from_openai(PAYLOAD)
    system, turns = conv.adopt("You are kdeps.", [Message("user", "And now?")])
    assert system == "Be brief.\n\nYou are kdeps."
    assert [m.content for m in turns] == ["Hello", "", "42", "And now?"]
    system, turns = conv.adopt(None, [Message("user", "Answer in French: And now?")])
    assert system == "Be brief." and turns[-1].content == "Answer in French: And now?"
    assert conv.messages[-1].content == "And now?"  # adopting does not change the client's conversation


def test_fill_leaves_what_the_resource_set() -> None:
    conv = Conversation.from_openai(PAYLOAD)
    request = ChatRequest(model="m", messages=[], temperature=0.9)
    conv.fill(request, json_set=False)
    assert (request.temperature, request.max_tokens) == (0.9, 7)
    assert request.stop == ["END"] and request.json_mode
    request = ChatRequest(model="m", messages=[])
    conv.fill(request, json_set=True)
    assert not request.json_mode
