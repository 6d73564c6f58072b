"""`files:` on chat: a path that comes from request data reaches the model only when it names one of
this request's uploads or a file inside the agent folder (or a folder in KDEPS_FILES_ALLOW); the
error for anything else is the same whether the file exists or not."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdeps.engine import Engine, RequestData
from kdeps.engine.request import UploadedFile
from kdeps.spec import load_project
from tests.agents import make_agent
from tests.fakes.openai_compat import OpenAICompatFake, serve_in_env

IMAGE = Path(__file__).resolve().parents[1] / "data" / "chat" / "vision" / "red.png"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAICompatFake]:
    monkeypatch.delenv("KDEPS_FILES_ALLOW", raising=False)
    yield from serve_in_env(monkeypatch)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """An agent whose chat sends `files: ["{{ get('image') }}"]`, and a folder outside it holding
    a real image."""
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(IMAGE, outside / "secret.png")
    root = make_agent(tmp_path / "agent", {"answer": """\
        metadata: {actionId: answer}
        run:
          chat:
            backend: openai
            baseUrl: "{{ get('FAKE_URL', 'env') }}"
            model: gpt-4o
            prompt: "Describe it"
            files: ["{{ get('image') }}"]
        """}, target="answer")
    (root / "data").mkdir()
    shutil.copy(IMAGE, root / "data" / "logo.png")
    return root, outside


async def ask(root: Path, image: str, files: list[UploadedFile] | None = None):
    request = RequestData(method="POST", path="/api/v1/run", route="/api/v1/run", body={"image": image},
                          files=files or [])
    return await Engine(load_project(root)).handle(request)


def images_sent(fake: OpenAICompatFake) -> int:
    return sum(1 for rec in fake.requests for m in (rec.json or {}).get("messages", [])
               if isinstance(m.get("content"), list)
               for part in m["content"] if part.get("type") == "image_url")


@pytest.mark.parametrize("entry", ["{outside}/secret.png", "../outside/secret.png", "/etc/passwd",
                                   "{outside}/../outside/secret.png", "~/.ssh/id_rsa"])
async def test_outside_paths_are_refused(fake: OpenAICompatFake, layout: tuple[Path, Path],
                                         entry: str) -> None:
    root, outside = layout
    res = await ask(root, entry.format(outside=outside))
    assert res.status == 400, res.body
    assert images_sent(fake) == 0 and not fake.requests


async def test_symlink_out_of_the_agent_is_refused(fake: OpenAICompatFake, layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "data" / "link.png").symlink_to(outside / "secret.png")
    res = await ask(root, "data/link.png")
    assert res.status == 400 and not fake.requests


async def test_error_does_not_tell_whether_a_path_exists(fake: OpenAICompatFake,
                                                         layout: tuple[Path, Path]) -> None:
    root, outside = layout
    existing = await ask(root, str(outside / "secret.png"))
    missing = await ask(root, str(outside / "nothing.png"))
    shape = lambda res: res.body["error"]["message"].replace(str(outside), "").replace(  # noqa: E731
        "secret.png", "X").replace("nothing.png", "X")
    assert existing.status == missing.status == 400
    assert shape(existing) == shape(missing)


async def test_agent_folder_and_uploads_still_work(fake: OpenAICompatFake, layout: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    root, _ = layout
    fake.say("red")
    res = await ask(root, "data/logo.png")
    assert res.status == 200, res.body
    saved = tmp_path / "upload-dir" / "photo.png"
    saved.parent.mkdir()
    shutil.copy(IMAGE, saved)
    upload = UploadedFile(field="image", filename="photo.png", path=str(saved), mime="image/png",
                          size=saved.stat().st_size)
    fake.say("red again")
    res = await ask(root, "photo.png", [upload])
    assert res.status == 200, res.body
    assert images_sent(fake) == 2


async def test_allowlist_setting(fake: OpenAICompatFake, layout: tuple[Path, Path],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, outside = layout
    monkeypatch.setenv("KDEPS_FILES_ALLOW", str(outside))
    fake.say("red")
    res = await ask(root, str(outside / "secret.png"))
    assert res.status == 200, res.body
