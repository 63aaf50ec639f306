"""`intern serve` on the real demo model, SmolLM2-135M-Instruct (the Q4_1 GGUF that scripts/get-demo-model.sh
fetches; scripts/test-integration runs this file), driven by the official `openai` client: a greedy chat turn
in SmolLM2's own template answers with Paris, streamed and not streamed alike, and a request with `tools`
is refused with 400 `tools_not_supported`, because SmolLM2's vocabulary has none of the InternLM2 action
tokens (`<|action_start|><|plugin|>`) a tool call is written with. Skipped when the file is absent.
"""

import os

import openai
import pytest

from test_openai_client import Server, WEATHER_TOOLS, expect_error

GGUF = os.environ.get("INTERN_SMOLLM_GGUF", os.path.expanduser("~/.cache/internkit/SmolLM2-135M-Instruct.Q4_1.gguf"))
NAME = "smollm2"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]

pytestmark = pytest.mark.skipif(not os.path.exists(GGUF), reason=f"no demo model at {GGUF} (scripts/get-demo-model.sh)")


@pytest.fixture(scope="module")
def smollm():
    s = Server(GGUF, "--max-batch", "4", context=2048, name=NAME)
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def client(smollm):
    return openai.OpenAI(base_url=smollm.url + "/v1", api_key="unused", max_retries=0, timeout=300)


def test_chat_answers_paris_streamed_or_not(client):
    r = client.chat.completions.create(model=NAME, messages=QUESTION, max_tokens=32, temperature=0)
    text = r.choices[0].message.content
    assert "Paris" in text, text
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens > 0
    pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=NAME, messages=QUESTION, max_tokens=32, temperature=0, stream=True) if c.choices]
    assert "".join(pieces) == text


def test_tools_need_the_internlm2_action_tokens(client):
    body = expect_error(openai.BadRequestError, 400, lambda: client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=WEATHER_TOOLS, max_tokens=8))
    assert body["code"] == "tools_not_supported" and body["param"] == "tools", body
    assert "<|plugin|>" in body["message"], body
    # tool_choice "none" leaves the declarations out, so the request is an ordinary chat turn.
    r = client.chat.completions.create(model=NAME, messages=QUESTION, tools=WEATHER_TOOLS, tool_choice="none", max_tokens=4)
    assert r.choices[0].finish_reason in ("stop", "length")
