"""Throughput of the openai/ollama backends against the fake server (20 ms simulated model latency)."""
import time
import PIL.Image
from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, Turn
from vlmlab.models.ollama import OllamaBackend
from vlmlab.models.openai_compat import OpenAIBackend
from vlmlab.testing import FaultPlan, serve

image = Image.from_pil(PIL.Image.new("RGB", (224, 224), (200, 30, 30)))
def responder(conversation, params):
    time.sleep(0.02)
    return "a red square"
N = 200
print(f"{'api':8} {'conc':>4} {'faults':>6} {'items/s':>8} {'ok':>4}")
for api, cls in (("openai", OpenAIBackend), ("ollama", OllamaBackend)):
    for conc in (1, 4, 16):
        for rate in (0.0, 0.2):
            faults = FaultPlan(server_error=rate / 2, rate_limit=rate / 4, dropped=rate / 4, retry_after=0.01, seed=0) if rate else None
            with serve(responder, api=api, faults=faults, serialize=False) as server:
                backend = cls(server.url, "m", max_concurrency=conc, backoff_base=0.005, backoff_max=0.05)
                reqs = [GenerationRequest(f"{i}", [Turn("user", [image, f"q{i}"])]) for i in range(N)]
                t = time.perf_counter(); res = backend.generate(reqs); dt = time.perf_counter() - t
            print(f"{api:8} {conc:>4} {rate:>6.0%} {N / dt:>8.1f} {sum(r.status == 'ok' for r in res):>4}")
