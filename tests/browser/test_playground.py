"""The playground and /docs in a real browser (headless Chromium), against `kdeps run --ui`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOT, console_errors
from tests.e2e.server_utils import KdepsServer, running
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello"
VISION = Path(__file__).parent / "agents" / "vision"
RED_PNG = ROOT / "tests" / "data" / "chat" / "vision" / "red.png"
WAIT = 60

# Records every change of the answer's text, so a test can tell a stream from one late write.
WATCH_ANSWER = """
window.__answers = [];
new MutationObserver(() => window.__answers.push(document.getElementById('answer').textContent))
  .observe(document.getElementById('answer'), {childList: true, characterData: true, subtree: true});
"""


def wait(driver: Any, condition: Any, timeout: float = WAIT) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def by_id(driver: Any, name: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, name)


def open_playground(driver: Any, server: KdepsServer) -> None:
    driver.get(server.url + "/")
    wait(driver, lambda d: by_id(d, "route").get_attribute("value") not in (None, ""), 20)


def wait_answered(driver: Any) -> str:
    """The status line once the request has completed (it then reads `HTTP <status> ... in N ms`)."""
    wait(driver, lambda d: " ms" in by_id(d, "status").text and by_id(d, "send").is_enabled())
    return str(by_id(driver, "status").text)


def trace_rows(driver: Any) -> dict[str, list[str]]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#trace tbody tr")
    return {r.get_attribute("data-resource"): [c.text for c in r.find_elements(By.CSS_SELECTOR, "th, td")]
            for r in rows}


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KdepsServer]:
    agent = tmp_path_factory.mktemp("hello") / "hello"
    shutil.copytree(HELLO, agent)
    with running(agent, "--ui") as server:
        yield server


@pytest.fixture(scope="module")
def fake() -> Iterator[OpenAICompatFake]:
    with OpenAICompatFake("openai") as server:
        yield server


@pytest.fixture(scope="module")
def vision(fake: OpenAICompatFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KdepsServer]:
    agent = tmp_path_factory.mktemp("vision") / "vision"
    shutil.copytree(VISION, agent)
    with running(agent, "--ui", env={"FAKE_URL": fake.url, "OPENAI_API_KEY": DEFAULT_KEY}) as server:
        yield server


@pytest.mark.local_model
@pytest.mark.slow  # the model generates into a browser
def test_hello_answer_streams_token_by_token_with_both_resources_traced(browser, hello):
    pytest.importorskip("llama_cpp")
    open_playground(browser, hello)
    assert by_id(browser, "stream").is_selected()  # the hello agent's chat streams
    by_id(browser, "in-q").send_keys("What is the capital of France?")
    browser.execute_script(WATCH_ANSWER)
    by_id(browser, "send").click()
    assert wait_answered(browser).startswith("HTTP 200")

    answer = by_id(browser, "answer").text
    assert answer.strip()  # what the 135M model knows is not under test
    seen = [text for text in browser.execute_script("return window.__answers") if text]
    assert len(set(seen)) >= 3 and answer.startswith(seen[0]) and seen[0] != answer  # grew piece by piece
    rows = trace_rows(browser)
    assert list(rows) == ["llmResource", "responseResource"]
    assert rows["llmResource"][1] == "ok" and rows["llmResource"][2].endswith(" ms")
    assert rows["llmResource"][3] == "gguf / smollm2:135m"
    assert rows["responseResource"][1] == "ok"
    assert '"answer"' in by_id(browser, "body-out").text
    assert "text/event-stream" in by_id(browser, "headers-out").text
    assert console_errors(browser) == []
    # KDEPS_UPDATE_SCREENSHOT=1 refreshes the README's picture
    target = SCREENSHOT if os.environ.get("KDEPS_UPDATE_SCREENSHOT") else hello.agent.parent / "shot.png"
    browser.save_screenshot(str(target))


def test_a_failed_preflight_shows_its_message_and_resource(browser, hello):
    open_playground(browser, hello)
    by_id(browser, "send").click()  # no question
    assert wait_answered(browser).startswith("HTTP 400")
    error = by_id(browser, "error").text
    assert "Send a question as 'q'" in error and "llmResource" in error
    rows = trace_rows(browser)
    assert rows["llmResource"][1] == "error"
    # the failed request itself is the only thing the console reports
    assert console_errors(browser, "status of 400") == []


def test_an_uploaded_image_reaches_the_vision_model(browser, vision, fake):
    fake.reset()
    open_playground(browser, vision)
    assert by_id(browser, "upload").is_displayed()
    by_id(browser, "in-q").send_keys("What is in this picture?")
    by_id(browser, "file").send_keys(str(RED_PNG))
    by_id(browser, "send").click()
    assert wait_answered(browser).startswith("HTTP 200")

    content = fake.last.json["messages"][-1]["content"]
    images = [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]
    assert len(images) == 1 and images[0].startswith("data:image/png;base64,")
    assert {"type": "text", "text": "What is in this picture?"} in content
    assert by_id(browser, "answer").text == "ok"
    rows = trace_rows(browser)
    assert list(rows) == ["describe", "response"]
    assert rows["describe"][3] == "openai / gpt-4o" and rows["describe"][4] == "5 / 1"
    assert "Active session" in by_id(browser, "session").text

    by_id(browser, "copy-curl").click()
    curl = by_id(browser, "curl").text
    assert curl.startswith("curl -sS -N -X POST") and "/api/v1/describe" in curl
    assert "-F 'file=@red.png'" in curl and "--form-string 'q=What is in this picture?'" in curl

    by_id(browser, "new-session").click()
    wait(browser, lambda d: "No session" in by_id(d, "session").text, 10)
    assert not [c for c in browser.get_cookies() if c["name"] == "kdeps_session"]
    assert console_errors(browser) == []


def test_keyboard_only_use_with_labelled_controls(browser, vision, fake):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    fake.reset()
    open_playground(browser, vision)
    unlabelled = browser.execute_script("""
        return [...document.querySelectorAll('input, select, textarea')]
          .filter(e => e.offsetParent !== null && e.labels.length === 0).map(e => e.id);""")
    assert unlabelled == []
    browser.execute_script("document.activeElement.blur()")
    keys = ActionChains(browser)  # key presses as a person types them, to whatever has the focus
    order = []
    for _ in range(12):
        keys.send_keys(Keys.TAB).perform()
        element = browser.switch_to.active_element
        order.append(element.get_attribute("id") or element.text)
        if order[-1] == "in-q":
            keys.send_keys("typed by keyboard").perform()
        if order[-1] == "send":
            break
    assert order == ["API docs", "openapi.json", "route", "in-q", "file", "file-field", "body", "stream",
                     "send"]
    keys.send_keys(Keys.ENTER).perform()
    assert wait_answered(browser).startswith("HTTP 200")
    assert fake.last.json["messages"][-1]["content"] == "typed by keyboard"
    assert console_errors(browser) == []


def test_docs_render_the_workflow_openapi_offline(browser, vision):
    from selenium.webdriver.common.by import By

    browser.get(vision.url + "/docs")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"), 20)
    paths = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
    assert "/api/v1/describe" in paths[0]
    assert console_errors(browser) == []
