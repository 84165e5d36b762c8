"""`vlmlab demo`: all three studies on the toy world in minutes, with one report.

    from vlmlab.demo import run_demo
    result = run_demo("runs/demo", quick=True)      # or `vlmlab demo --quick`
    result.report["html"]                            # runs/demo/report.html (+ report.png)

The demo is the top layer beside the CLI: it calls the studies (`vlmlab.caption`, `vlmlab.icl`,
`vlmlab.rating`) with their own validated configs (written to `<out>/configs/`, the same as
`configs/demo/` for the default folder) and nothing imports it but `vlmlab.cli.demo`.
"""

from vlmlab.demo.plan import DemoPlan, demo_plan
from vlmlab.demo.run import DemoResult, run_demo

__all__ = ["DemoPlan", "DemoResult", "demo_plan", "run_demo"]
