"""Testing helpers: run and test code that uses modelmix with no network and no real model.

- `FunctionModel`: a Model answering from a Python function (in-process; fastest).
- `FakeOpenAIServer` / `FakeReply`: a scripted OpenAI-compatible HTTP server on 127.0.0.1, so the
  real HTTP path (streaming, errors, connection reuse) is exercised.
"""

from ._function_model import FunctionModel
from ._server import FakeOpenAIServer, FakeReply

__all__ = ["FakeOpenAIServer", "FakeReply", "FunctionModel"]
