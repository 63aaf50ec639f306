"""The real `intern serve` on a tiny random checkpoint (`intern init --preset tiny`), driven by the
official `openai` Python client, as a user's program would: response shapes, streaming, usage counts
against the tokenizer (`intern template` / `intern tokenize`), stop strings, seeds, a tool-call round
trip, every error case, batch invariance under concurrency, and a bounded load test with cancellations
checked through /metrics. Everything runs on loopback and is bounded in count and time.

Run through scripts/test-server (builds first); INTERN_BIN names the binary (default .build/debug/intern).
"""

import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import httpx
import openai
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("INTERN_BIN", os.path.join(ROOT, ".build", "debug", "intern"))
API_KEY = "test-key"
MODEL = "tiny"
CONTEXT = 512


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `intern serve` process on a free loopback port."""

    def __init__(self, checkpoint, *extra, context=CONTEXT, name=MODEL):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="intern-serve-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [BIN, "serve", "--model", checkpoint, "--port", str(self.port), "--model-name", name,
             "--ctx", str(context), "--threads", "2", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"intern serve exited with {self.process.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("intern serve did not become healthy in 60 s: " + self.output())

    def output(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM: a graceful shutdown must end the process with status 0."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def metrics(self):
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


@pytest.fixture(scope="session")
def checkpoint():
    directory = tempfile.mkdtemp(prefix="intern-tiny-")
    subprocess.run([BIN, "init", "--preset", "tiny", "--out", directory, "--seed", "3"], check=True, capture_output=True)
    return directory


@pytest.fixture(scope="session")
def server(checkpoint):
    s = Server(checkpoint, "--api-key", API_KEY, "--max-batch", "16")
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="session")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=120)


def template_ids(checkpoint, messages, tools=None):
    """The prompt ids `intern template` renders for a conversation."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "m.json"), "w", encoding="utf-8") as f:
            json.dump(messages, f, ensure_ascii=False)
        args = [BIN, "template", "--model", checkpoint, "--messages", os.path.join(d, "m.json"), "--json"]
        if tools:
            with open(os.path.join(d, "t.json"), "w", encoding="utf-8") as f:
                json.dump(tools, f, ensure_ascii=False)
            args += ["--tools", os.path.join(d, "t.json")]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["ids"]


def tokenize(checkpoint, text):
    out = subprocess.run([BIN, "tokenize", "--model", checkpoint, "--jsonl", "--bos", "--special"],
                         input=json.dumps({"text": text}) + "\n", check=True, capture_output=True, text=True).stdout
    return json.loads(out)["ids"]


HELLO = [{"role": "user", "content": "Hello! Who are you?"}]
WEATHER_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


# MARK: - Shapes and counts

def test_models_lists_the_served_model(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]


def test_chat_completion_usage_matches_the_tokenizer(client, checkpoint):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=12, temperature=0, logprobs=True, top_logprobs=2)
    assert r.object == "chat.completion"
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens == len(template_ids(checkpoint, HELLO))
    # One logprob entry per generated token: completion_tokens counts exactly the sampled ids.
    assert r.usage.completion_tokens == len(choice.logprobs.content)
    if choice.finish_reason == "length":
        assert r.usage.completion_tokens == 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in choice.logprobs.content)


def test_streaming_chat_role_first_finish_last_usage(client, checkpoint):
    kwargs = dict(model=MODEL, messages=HELLO, max_tokens=10, temperature=0)
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    assert with_choices[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == len(template_ids(checkpoint, HELLO))
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_completions(client, checkpoint):
    prompt = "The quick brown fox"
    r = client.completions.create(model=MODEL, prompt=prompt, max_tokens=8, temperature=0, logprobs=3)
    assert r.object == "text_completion"
    assert r.usage.prompt_tokens == len(tokenize(checkpoint, prompt))
    assert r.usage.completion_tokens == len(r.choices[0].logprobs.tokens)
    assert r.choices[0].finish_reason in ("stop", "length")
    streamed = client.completions.create(model=MODEL, prompt=prompt, max_tokens=8, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == r.choices[0].text


def test_stop_string_cuts_the_output(client):
    kwargs = dict(model=MODEL, prompt="Once upon a time", temperature=0)
    full = client.completions.create(max_tokens=40, **kwargs).choices[0].text
    assert len(full) >= 6, f"too little text to pick a stop string from: {full!r}"
    middle = len(full) // 2
    stop = full[middle:middle + 2]
    expected = full[:full.index(stop)]
    r = client.completions.create(max_tokens=40, stop=[stop, "\u2603never"], **kwargs)
    assert r.choices[0].text == expected
    assert r.choices[0].finish_reason == "stop"
    single = client.completions.create(max_tokens=40, stop=stop, **kwargs)
    assert single.choices[0].text == expected


def test_seed_reproducibility(client):
    kwargs = dict(model=MODEL, messages=HELLO, max_tokens=16, temperature=1.0, top_p=0.95)
    a = client.chat.completions.create(seed=1234, **kwargs).choices[0].message.content
    b = client.chat.completions.create(seed=1234, **kwargs).choices[0].message.content
    c = client.chat.completions.create(seed=4321, **kwargs).choices[0].message.content
    assert a == b
    assert a != c, "different seeds gave the same 16 sampled tokens from a 92544-token vocabulary"


def test_n_choices_use_seed_plus_index(client):
    kwargs = dict(model=MODEL, messages=HELLO, max_tokens=8, temperature=1.0)
    both = client.chat.completions.create(n=2, seed=10, **kwargs)
    assert [c.index for c in both.choices] == [0, 1]
    assert both.choices[1].message.content == client.chat.completions.create(seed=11, **kwargs).choices[0].message.content


def test_tool_round_trip_is_rendered_as_the_template(client, checkpoint):
    """The random model cannot be made to call a tool, so the call is given: the assistant's tool_calls
    and the tool result go back, and the server must render exactly what `intern template` renders
    (tool → environment role, call → <|action_start|><|plugin|> JSON). The parsing of a generated call
    is tested in process with a scripted model (Tests/InternServerTests)."""
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 24 C"},
    ]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=WEATHER_TOOLS, max_tokens=4, temperature=0)
    assert r.usage.prompt_tokens == len(template_ids(checkpoint, messages, WEATHER_TOOLS))
    # tools are declared in the prompt; tool_choice "none" leaves them out.
    plain = client.chat.completions.create(model=MODEL, messages=messages[:1], tools=WEATHER_TOOLS, tool_choice="none", max_tokens=1)
    assert plain.usage.prompt_tokens == len(template_ids(checkpoint, messages[:1]))
    forced = client.chat.completions.create(
        model=MODEL, messages=messages[:1], tools=WEATHER_TOOLS, max_tokens=4, temperature=0,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert forced.usage.prompt_tokens > len(template_ids(checkpoint, messages[:1], WEATHER_TOOLS))
    assert forced.choices[0].finish_reason in ("length", "stop", "tool_calls")


# MARK: - Errors

def expect_error(kind, status, call):
    with pytest.raises(kind) as info:
        call()
    assert info.value.status_code == status
    body = info.value.body
    assert set(body) >= {"message", "type", "param", "code"}, body
    return body


def test_malformed_requests_are_400_naming_the_field(client):
    body = expect_error(openai.BadRequestError, 400, lambda: client.chat.completions.create(
        model=MODEL, messages=[{"role": "robot", "content": "x"}]))
    assert body["param"] == "messages[0].role"
    body = expect_error(openai.BadRequestError, 400, lambda: client.chat.completions.create(
        model=MODEL, messages=HELLO, extra_body={"temperature": "hot"}))
    assert body["param"] == "temperature"
    body = expect_error(openai.BadRequestError, 400, lambda: client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=-3))
    assert body["param"] == "max_tokens"
    body = expect_error(openai.BadRequestError, 400, lambda: client.completions.create(model=MODEL, prompt=[1, "x"]))
    assert body["param"] == "prompt[1]"


def test_raw_malformed_json_invalid_utf8_and_oversized_bodies(server):
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        r = http.post("/v1/chat/completions", content=b'{"model": "tiny", "messages": [')
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = http.post("/v1/chat/completions", content=b'{"model": "tiny", "messages": [{"role": "user", "content": "\xc3\x28\xff"}]}')
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_utf8"
        r = http.post("/v1/chat/completions", content=b'{"model": "tiny", "prompt": "' + b"a" * (9 << 20) + b'"}')
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        assert http.get("/health").status_code == 200  # still alive


def test_context_overflow_is_400_with_both_numbers(client, checkpoint):
    prompt = len(template_ids(checkpoint, HELLO))
    body = expect_error(openai.BadRequestError, 400, lambda: client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=CONTEXT))
    assert body["code"] == "context_length_exceeded"
    assert str(CONTEXT) in body["message"] and str(prompt + CONTEXT) in body["message"], body["message"]


def test_unknown_model_is_404(client):
    body = expect_error(openai.NotFoundError, 404, lambda: client.chat.completions.create(model="gpt-4o", messages=HELLO))
    assert body["code"] == "model_not_found"


def test_missing_or_wrong_api_key_is_401(server):
    other = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    body = expect_error(openai.AuthenticationError, 401, lambda: other.models.list())
    assert body["code"] == "invalid_api_key"
    r = httpx.post(server.url + "/v1/chat/completions", json={"model": MODEL, "messages": HELLO}, timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_full_queue_is_429(checkpoint):
    """One slot, one queue place: a long request holds the slot, a second waits, a third is refused."""
    s = Server(checkpoint, "--max-batch", "1", "--max-queue", "1", context=4096)
    try:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="none", max_retries=0, timeout=120)
        long = dict(model=MODEL, prompt="a", max_tokens=4000, temperature=0, stream=True)
        first = c.completions.create(**long)
        next(iter(first))  # the first holds the slot now (4000 tokens: seconds)
        time.sleep(0.2)
        second = c.completions.create(**long)  # the stream's head comes at once; the request waits in the queue
        body = expect_error(openai.RateLimitError, 429, lambda: c.completions.create(model=MODEL, prompt="b", max_tokens=4))
        assert body["code"] == "rate_limit_exceeded"
        first.close()
        second.close()
    finally:
        assert s.stop() == 0, s.output()


# MARK: - Batch invariance and load

def seeded(client):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=24, temperature=0.8, top_p=0.9, seed=42,
                                       logprobs=True, top_logprobs=5)
    return [(e.token, e.logprob, [(t.token, t.logprob) for t in e.top_logprobs]) for e in r.choices[0].logprobs.content]


def test_batch_invariance_alone_and_amid_8_others(client, server):
    alone = seeded(client)
    assert len(alone) > 0
    others = [dict(model=MODEL, messages=[{"role": "user", "content": f"Tell me about the number {i}" * (1 + i)}],
                   max_tokens=30 + i, temperature=0.9, seed=i) for i in range(8)]
    barrier = threading.Barrier(9)

    def other(kwargs):
        barrier.wait()
        return client.chat.completions.create(**kwargs).usage.completion_tokens

    def probe():
        barrier.wait()
        time.sleep(0.05)  # join a batch that is already running
        return seeded(client)

    with concurrent.futures.ThreadPoolExecutor(9) as pool:
        futures = [pool.submit(other, kwargs) for kwargs in others]
        crowded = pool.submit(probe).result()
        assert all(f.result() > 0 for f in futures)
    assert crowded == alone  # tokens and every logprob bitwise (the JSON floats are the same digits)
    buckets = {re.search(r'le="([^"]+)"', k).group(1): v for k, v in server.metrics().items()
               if k.startswith("intern_batch_size_bucket")}
    single = next(v for le, v in buckets.items() if le != "+Inf" and float(le) == 1.0)
    assert single < buckets["+Inf"], f"no decode step ever ran more than one sequence: {buckets}"


def test_load_64_streams_then_20_cancelled_leave_no_slot(client, server):
    prompts = [f"Story number {i % 4}" for i in range(64)]
    expected = {p: client.completions.create(model=MODEL, prompt=p, max_tokens=16, temperature=0).choices[0].text for p in set(prompts)}

    def stream(prompt):
        pieces, finish, usage = [], None, None
        for chunk in client.completions.create(model=MODEL, prompt=prompt, max_tokens=16, temperature=0, stream=True,
                                               stream_options={"include_usage": True}, logprobs=0):
            if chunk.usage:
                usage = chunk.usage
            for choice in chunk.choices:
                pieces.append(choice.text)
                if choice.logprobs:
                    pieces.append(("tokens", len(choice.logprobs.tokens)))
                finish = choice.finish_reason or finish
        text = "".join(p for p in pieces if isinstance(p, str))
        tokens = sum(p[1] for p in pieces if not isinstance(p, str))
        return prompt, text, tokens, usage, finish

    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        results = list(pool.map(stream, prompts, timeout=300))
    assert time.time() - start < 300
    for prompt, text, tokens, usage, finish in results:
        assert text == expected[prompt]  # nothing lost, duplicated or mixed between sequences
        assert tokens == usage.completion_tokens
        assert finish in ("stop", "length")

    before = server.metrics().get("intern_cancelled_requests_total", 0)

    def cancelled(i):
        s = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=400, temperature=1.0, seed=i, stream=True)
        it = iter(s)
        next(it)
        next(it)
        s.close()  # the client goes away mid-stream

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(cancelled, range(20), timeout=120))
    deadline = time.time() + 30
    while time.time() < deadline:
        m = server.metrics()
        if m["intern_active_sequences"] == 0 and m["intern_kv_reserved_tokens"] == 0 and m["intern_queue_depth"] == 0:
            break
        time.sleep(0.1)
    m = server.metrics()
    assert m["intern_active_sequences"] == 0, m
    assert m["intern_kv_reserved_tokens"] == 0, m
    assert m["intern_kv_used_tokens"] == 0, m
    assert m["intern_queue_depth"] == 0, m
    assert m["intern_cancelled_requests_total"] - before >= 20, m


def test_long_prompt_prefills_in_chunks_while_short_streams_decode(checkpoint):
    """Chunked prefill: a 3,000-token prompt that arrives while 3 streams decode is prefilled 8 tokens per
    scheduler step, between their decode steps, so each of them receives at least 375 tokens between the
    long request's sending and its answer. Prefilled whole (--prefill-chunk 0), they receive only those
    decoded while the request is parsed and answered (about 20 each here). Counts and order only."""
    s = Server(checkpoint, "--prefill-chunk", "8", context=4096)
    try:
        lock, stop = threading.Lock(), threading.Event()
        log, received = [], [0, 0, 0]

        def short(i):
            body = {"model": MODEL, "prompt": f"Story number {i}", "max_tokens": 3000, "stream": True, "ignore_eos": True,
                    "temperature": 0, "logprobs": 0}
            with httpx.stream("POST", s.url + "/v1/completions", json=body, timeout=120) as r:
                for line in r.iter_lines():
                    if stop.is_set():
                        return  # closing the stream cancels the request
                    choices = json.loads(line[6:])["choices"] if line.startswith("data: {") else []
                    if choices and choices[0].get("logprobs"):
                        with lock:
                            log.append(i)
                            received[i] += 1

        threads = [threading.Thread(target=short, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while time.time() < deadline and min(received) < 3:
            time.sleep(0.01)
        assert min(received) >= 3, s.output()
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        prompt = [1] + [1000 + (i * 37) % 5000 for i in range(2999)]
        with lock:
            before = len(log)
        r = c.completions.create(model=MODEL, prompt=prompt, max_tokens=1, temperature=0)
        with lock:
            during = log[before:]
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert r.usage.prompt_tokens == 3000 and r.usage.completion_tokens == 1
        assert all(during.count(i) >= 150 for i in range(3)), f"tokens per short stream during the prefill: {[during.count(i) for i in range(3)]}"
        m = s.metrics()
        assert m["intern_prefill_chunks_total"] >= 3000 // 8, m
    finally:
        assert s.stop() == 0, s.output()


def test_sigterm_cancels_in_flight_requests_and_exits_0(checkpoint):
    """Graceful shutdown: the engine stops first, so a long stream ends at once with its finish chunk and
    [DONE], and the process exits 0 without waiting out the generation."""
    s = Server(checkpoint, context=4096)
    lines = []

    def stream():
        body = {"model": MODEL, "prompt": "a", "max_tokens": 4000, "stream": True, "ignore_eos": True}
        with httpx.stream("POST", s.url + "/v1/completions", json=body, timeout=60) as r:
            lines.extend(line for line in r.iter_lines() if line)

    reader = threading.Thread(target=stream)
    reader.start()
    deadline = time.time() + 30
    while time.time() < deadline and len(lines) < 3:
        time.sleep(0.05)
    assert len(lines) >= 3, s.output()
    started = time.time()
    assert s.stop() == 0, s.output()
    assert time.time() - started < 10
    reader.join(timeout=30)
    assert lines[-1] == "data: [DONE]"
    last = json.loads(lines[-2][len("data: "):])
    assert last["choices"][0]["finish_reason"] == "stop"
    assert len(lines) < 3900, "the generation ran to its end instead of being cancelled"
    assert "engine stopping" in s.output()


def test_bench_serve_reports_lmdeploy_metrics(server):
    out = subprocess.run([BIN, "bench", "serve", "--url", server.url, "--api-key", API_KEY, "--concurrency", "4",
                          "--requests", "8", "--input-len", "16", "--output-len", "8", "--json"],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    report = json.loads(out)
    assert report["successful_requests"] == 8 and report["failed_requests"] == 0, report
    assert report["output_throughput_tok_s"] > 0
    assert report["input_throughput_tok_s"] == pytest.approx(2 * report["output_throughput_tok_s"], rel=1e-3)  # 16 in, 8 out
    assert 0 < report["ttft_p50_ms"] <= report["ttft_p99_ms"]
    assert report["tpot_mean_ms"] > 0 and report["itl_p50_ms"] > 0
