"""A local OpenAI-compatible chat-completions server for tests (no LLM can run here).

It speaks the real wire format (``POST /v1/chat/completions``, or Azure's
``/openai/deployments/<name>/chat/completions``, with ``n`` choices and a ``usage`` block) and plays both roles the evaluation needs, following simple rules:
- generator (our grounded prompt): the scripted answer for the question, else "I don't know.";
- RAGAS judge: recognises each RAGAS prompt by its instruction, reads the JSON input that
  RAGAS appends, and answers in the prompt's output schema. Statement and attribution
  verdicts are 1 unless the test makes the judge strict (``faithful = False``).
Two ways to break the judge, as real ones break: ``judge_down`` answers every judge request
with an HTTP 500 error body; answers listed in ``statementless`` get no statements extracted,
which RAGAS scores as NaN faithfulness (valid output that cannot be scored).
"""

from __future__ import annotations

import json
import re

from assets.evaluation.scoring import GROUNDED_PROMPT
from tests.contract_http import JsonHandler, serving

_INPUT = re.compile(r"Now perform the same with the following input\ninput: (.*)\nOutput: $", re.S)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


class ChatServer:
    def __init__(self, answers: dict[str, str]):
        self.answers = answers  # question -> answer the generator gives
        self.questions = {answer: question for question, answer in answers.items()}
        self.faithful = True
        self.judge_down = False
        self.statementless: set[str] = set()
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._serving = serving(self._handler())
        self.url = ""

    def __enter__(self) -> ChatServer:
        self.url = self._serving.__enter__() + "/v1"
        return self

    def __exit__(self, *exc) -> None:
        self._serving.__exit__(*exc)

    def reply(self, messages: list[dict]) -> str:
        if messages[0]["content"] == GROUNDED_PROMPT:
            question = messages[-1]["content"].rsplit("Question: ", 1)[1]
            return self.answers.get(question, "I don't know.")
        prompt = messages[-1]["content"]
        data = json.loads(_INPUT.search(prompt).group(1))
        verdict = 1 if self.faithful else 0
        if prompt.startswith("Given a question and an answer, analyze the complexity"):
            unscorable = data["answer"] in self.statementless
            return json.dumps({"statements": [] if unscorable else _sentences(data["answer"])})
        if prompt.startswith("Your task is to judge the faithfulness"):
            return json.dumps({"statements": [{"statement": s, "reason": "checked against the context",
                                               "verdict": verdict} for s in data["statements"]]})
        if prompt.startswith("Generate a question for the given answer"):
            response = data["response"]
            return json.dumps({"question": self.questions.get(response, response),
                               "noncommittal": int("don't know" in response)})
        if prompt.startswith("Given question, answer and context verify"):
            return json.dumps({"reason": "the context states the answer", "verdict": 1})
        if prompt.startswith("Given a context, and an answer, analyze each sentence"):
            return json.dumps({"classifications": [{"statement": s, "reason": "in the context", "attributed": verdict}
                                                   for s in _sentences(data["answer"])]})
        raise ValueError(f"unexpected prompt: {prompt[:80]!r}")

    def _handler(self):
        server = self

        class Handler(JsonHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.read_json()
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                server.paths.append(self.path)
                if not self.path.split("?")[0].endswith("/chat/completions"):  # OpenAI and Azure routes
                    self.send_error(404)
                    return
                if server.judge_down and body["messages"][0]["content"] != GROUNDED_PROMPT:
                    self.send_json(500, {"error": {"message": "the judge model is unavailable", "type": "server_error",
                                               "param": None, "code": None}})
                    return
                content = server.reply(body["messages"])
                n = body.get("n") or 1
                prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
                payload = {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": i, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop", "logprobs": None} for i in range(n)],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n * len(content.split()),
                              "total_tokens": prompt_tokens + n * len(content.split())},
                }
                self.send_json(200, payload)

        return Handler
