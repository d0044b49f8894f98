"""Run ``python -m llama_cpp.server`` with the same load options modelmix uses in-process.

llama.cpp's AMX weight-repacking path crashes on some AMX CPUs (see
``modelmix.providers._llama_runtime``); the server has no flag for it, so this launcher applies
modelmix's switch and then runs the server module unchanged. Arguments are the server's own.
"""

from __future__ import annotations

import runpy

from modelmix.providers._llama_runtime import extra_buffers_for_this_cpu, import_llama_cpp

if __name__ == "__main__":
    with extra_buffers_for_this_cpu(import_llama_cpp()):
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
