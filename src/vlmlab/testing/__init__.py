"""Test support that ships with vlmlab: fake OpenAI-compatible and Ollama servers, a synthetic
selector world (`vlmlab.testing.selector_world`: selector data with a known right answer), and the
conformance checks of a VLM checkpoint (`vlmlab.testing.conformance.run_all(folder)`).

Not part of any study: no product module imports `vlmlab.testing` (tests/test_layers.py checks
it). The test suite, `benchmarks/bench_http.py` and `benchmarks/bench_selectors.py` use it; users may too, to test their own code
against an HTTP backend without a real server:

    from vlmlab.testing import FaultPlan, serve

    with serve(lambda conversation, params: "happy", api="openai", faults=FaultPlan(rate_limit=0.2)) as server:
        ...  # OpenAIBackend(server.url, "fake") talks to it
"""

from vlmlab.testing.fake_servers import FAULT_KINDS, FaultPlan, ServerHandle, serve

__all__ = ["FAULT_KINDS", "FaultPlan", "ServerHandle", "serve"]
