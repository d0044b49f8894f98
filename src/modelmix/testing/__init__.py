"""Testing helpers: run and test code that uses modelmix with no network and no real model.

- `FunctionModel`: a Model answering from a Python function or a script of replies (in-process;
  fastest).
- `FakeOpenAIServer`: a scripted OpenAI-compatible HTTP server on 127.0.0.1, so the real HTTP path
  (streaming, errors, connection reuse) is exercised.
- `FakeReply`: what both answer, including how they misbehave (status and headers, latency, a
  dropped stream).
- `FakeClock`: time that passes only when waited on, for retries, breakers and fake latency.
"""

from ._clock import FakeClock
from ._function_model import FunctionModel
from ._replies import FakeReply
from ._server import FakeOpenAIServer

__all__ = ["FakeClock", "FakeOpenAIServer", "FakeReply", "FunctionModel"]
