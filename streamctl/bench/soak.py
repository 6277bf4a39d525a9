"""Sustained load: single-record POSTs at the producer API's maximum for minutes, with the job's lag
sampled throughout and one freshness probe per window; then how long the job takes to catch up once
the load stops, and validate's verdict on everything it wrote.

The lag is the seconds of ingest the job has not read yet (streamctl/pipeline/job_lag.py)."""

from __future__ import annotations

import subprocess
import threading
import time

from streamctl.bench.cpu import CpuWatch, service_processes
from streamctl.bench.freshness import bench_freshness, percentile
from streamctl.bench.ingest import IngestFigure, batch_figure, end_offsets_total, wrk_argv, wrk_figure
from streamctl.flink.placement import placement_of
from streamctl.pipeline.job_lag import input_watermark_ms, job_lag, running_job_id
from streamctl.verdicts import check_stack

SAMPLE_S = 5.0


class _BatchLoad:
    """POST /transactions batches from two client threads (ingest.batch_figure) in the background."""

    def __init__(self, producer_url: str, seconds: int, batch_size: int):
        self.figure: IngestFigure | None = None
        self.thread = threading.Thread(target=self._run, args=(producer_url, seconds, batch_size), daemon=True)
        self.thread.start()

    def _run(self, producer_url: str, seconds: int, batch_size: int) -> None:
        self.figure = batch_figure(producer_url, seconds, batch_size)

    def poll(self) -> int | None:
        return None if self.thread.is_alive() else 0


def bench_soak(runtime, seconds: int = 600, connections: int = 32, batch_size: int = 0,
               catch_up_timeout_s: float = 600) -> dict:
    """With `batch_size`, batches of that many records from two threads instead of wrk's single POSTs."""
    settings = runtime.settings
    endpoints = runtime.endpoints()
    placement = placement_of(runtime)
    topic = settings.kafka.topic
    delay_ms = settings.flink.watermark_delay_seconds * 1000
    window_s = settings.flink.window_seconds

    def lag() -> float | None:
        return job_lag(placement.rest_url, placement.job_name, delay_ms).seconds

    # One marked transaction per window while the load runs: from each window's end until its row is in
    # both sinks (the windows the probes fall in close while the load still runs).
    probes = max(1, int(seconds // window_s) - 1)
    freshness: dict = {}
    prober = threading.Thread(target=lambda: freshness.update(bench_freshness(settings, probes)), daemon=True)
    in_topic_before = end_offsets_total(endpoints.kafka, topic)
    watch = CpuWatch(service_processes(runtime))
    load: subprocess.Popen | _BatchLoad
    if batch_size:
        load = _BatchLoad(endpoints.producer_url, seconds, batch_size)
    else:
        load = subprocess.Popen(wrk_argv(endpoints.producer_url, seconds, connections), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    prober.start()
    samples: list[dict] = []
    while load.poll() is None:
        time.sleep(SAMPLE_S - (time.monotonic() - started) % SAMPLE_S)
        samples.append({"t_s": round(time.monotonic() - started, 1), "lag_s": _rounded(lag()),
                        "in_topic": end_offsets_total(endpoints.kafka, topic) - in_topic_before})
    load_ended = time.monotonic()
    cpu = watch.read()
    if isinstance(load, _BatchLoad):
        load.thread.join()
        assert load.figure is not None
        figure = load.figure
    else:
        figure = wrk_figure("producer API, POST /transaction, sustained", load.communicate()[0], seconds)
    load_ended_ms = time.time() * 1000
    lag_at_end = lag()
    caught_up_s = None  # when the job has read everything written before the load ended
    while time.monotonic() - load_ended < catch_up_timeout_s:
        job_id = running_job_id(placement.rest_url, placement.job_name)
        watermark = input_watermark_ms(placement.rest_url, job_id) if job_id else None
        if watermark is not None and watermark >= load_ended_ms - delay_ms:
            caught_up_s = time.monotonic() - load_ended
            break
        time.sleep(0.5)
    prober.join(timeout=3 * window_s + 60)
    result = check_stack(settings, wait_s=3 * window_s + 60)
    lags = [s["lag_s"] for s in samples if s["lag_s"] is not None]
    steady = lags[len(lags) // 6:]  # after the first sixth: the JIT and the pools have warmed up
    return {
        "load": figure.server, "seconds": seconds, "connections": None if batch_size else connections,
        "accepted": figure.acknowledged, "accepted_per_s": round(figure.acknowledged_per_s),
        "non_2xx": figure.non_2xx, "errors": figure.errors, "latency_avg_ms": figure.latency_avg_ms,
        "in_topic": end_offsets_total(endpoints.kafka, topic) - in_topic_before,
        "lag_s_at_end": _rounded(lag_at_end), "lag_s_max": max(lags, default=None),
        "lag_s_p95_after_warmup": percentile(steady, 0.95) if steady else None,
        "caught_up_s_after_load": _rounded(caught_up_s),
        "freshness": freshness,
        "validate": result.verdict, "validate_windows_judged": result.topic.get("windows"),
        "samples": samples, "cpu_during_load": cpu,
        "goal": {"lag_s_at_end_below": 5, "caught_up_within_s": 15, "freshness_p95_s_at_most": 2.5,
                 "validate": "exact"},
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
