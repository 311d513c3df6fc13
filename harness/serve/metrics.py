"""`GET /metrics`: the dispatcher's counters in Prometheus' text exposition format (version 0.0.4)."""

from __future__ import annotations

from execrl.harness.records import Verdict
from execrl.harness.serve.dispatch import Dispatcher


def prometheus_text(dispatcher: Dispatcher) -> str:
    """One HELP/TYPE block per metric; verdicts and refusals are labelled series of one counter each."""
    now = dispatcher.snapshot()
    gauges = {
        "execrl_queue_depth": ("gauge", "Programs accepted and waiting for a sandbox worker.", now["queued"]),
        "execrl_in_flight": ("gauge", "Programs running in the sandbox pool.", now["in_flight"]),
        "execrl_executions_per_second": ("gauge", "Programs finished per second over the last 10 s.", now["rate"]),
        "execrl_executions_total": ("counter", "Programs finished.", now["executions"]),
        "execrl_sandbox_errors_total": (
            "counter", "Programs that ended in sandbox_error (a harness fault, no reward).",
            now["verdicts"][Verdict.SANDBOX_ERROR.value],
        ),
    }  # fmt: skip
    verdicts = {v.value: now["verdicts"][v.value] for v in Verdict}
    rejected = {reason: now["rejected"][reason] for reason in ("overloaded", "draining")}
    lines = []
    for name, (kind, help_text, value) in gauges.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    lines += ["# HELP execrl_verdicts_total Programs finished, by verdict.", "# TYPE execrl_verdicts_total counter"]
    lines += [f'execrl_verdicts_total{{verdict="{v}"}} {n}' for v, n in verdicts.items()]
    lines += ["# HELP execrl_rejected_total Requests refused at admission, by reason (429 overloaded, 503 draining).",
              "# TYPE execrl_rejected_total counter"]  # fmt: skip
    lines += [f'execrl_rejected_total{{reason="{r}"}} {n}' for r, n in rejected.items()]
    return "\n".join(lines) + "\n"
