"""Test-wide safety: no network, no user files, no real model calls.

- litellm reads its bundled cost map instead of fetching one;
- the store's default database is a temporary file, never the user's;
- real model calls are blocked (servers on 127.0.0.1 are still allowed).
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["LLMGINE_BLOCK_REAL_MODELS"] = "1"
os.environ["LLMGINE_DB"] = os.path.join(tempfile.mkdtemp(prefix="llmgine-tests-"), "default.db")
# Provider keys from the developer's shell must not leak into tests (or choose their model).
for _name in [n for n in os.environ if n.endswith("_API_KEY") or n == "LLMGINE_MODEL"]:
    del os.environ[_name]

from fake_openai import fake_openai  # noqa: E402,F401 - the fake OpenAI server fixture, for every module

# PostgreSQL and Redis fixtures, and the store on both backends (tests/services.py).
pytest_plugins = ["services"]
