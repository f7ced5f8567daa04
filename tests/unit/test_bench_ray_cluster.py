"""bench/ray_cluster.py's readers of /proc (the Ray workers' memory in bench/index_build.py),
on made-up texts where a case is hard to produce, and on this process and a real child."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import bench_module

rc = bench_module("ray_cluster")


def test_status_sizes_in_kib():
    text = ("Name:\tpython\nVmPeak:\t  900 kB\nVmHWM:\t  512000 kB\nVmRSS:\t  4096 kB\n"
            "RssAnon:\t  1024 kB\nRssFile:\t  3072 kB\nThreads:\t3\n")
    assert rc.status_kib(text) == {"VmPeak": 900, "VmHWM": 512000, "VmRSS": 4096,
                                   "RssAnon": 1024, "RssFile": 3072}


def test_status_of_this_process():
    kib = rc.status_kib(Path("/proc/self/status").read_text())
    assert kib["VmHWM"] >= kib["VmRSS"] > 0


def test_parent_from_stat_with_spaces_and_parentheses_in_the_command():
    assert rc.stat_parent("123 (ray::a (b) c) S 77 123 123 0 -1") == 77
    assert rc.stat_parent(Path("/proc/self/stat").read_text()) == os.getppid()


def test_cpu_seconds_from_stat():
    fields = ["S", "1"] + ["0"] * 9 + ["250", "50"] + ["0"] * 30    # utime, stime: 12th, 13th
    assert rc.stat_cpu("9 (a) b) " + " ".join(fields), 100) == 3.0
    assert rc.stat_cpu(Path("/proc/self/stat").read_text(), os.sysconf("SC_CLK_TCK")) >= 0


def test_descendants_follow_the_tree_and_leave_out_the_root_and_others():
    parents = {2: 1, 3: 2, 4: 3, 5: 1, 6: 9}
    assert rc.descendants(parents, 2) == {3, 4}
    assert rc.descendants(parents, 1) == {2, 3, 4, 5}
    assert rc.descendants(parents, 4) == set()


def test_descendants_of_a_real_child():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        assert child.pid in rc.descendants(rc._parents(), os.getpid())
    finally:
        child.communicate()


def test_task_name_of_ray_workers_only():
    assert rc.task_name(b"ray::_compute\0\0\0") == "_compute"
    assert rc.task_name(b"ray::IDLE\0\0") == "IDLE"
    assert rc.task_name(b"ray::\0") == "IDLE"
    assert rc.task_name(b"/usr/bin/python\0-c\0ray::x") is None
    assert rc.task_name(b"") is None


def test_worker_summary_counts_only_the_workers_that_ran_the_task():
    memory = rc.RayProcesses(root=0)
    memory.peak = {10: 300 * 1024, 11: 500 * 1024, 12: 900 * 1024}
    memory.tasks = {10: {"IDLE", "_compute"}, 11: {"_compute"}, 12: {"_on_worker"}}
    memory.running = {"_compute": 450 * 1024, "_on_worker": 800 * 1024}
    memory.anon = {"_compute": 200 * 1024}
    memory.cpu = {10: 1.5, 11: 2.0, 12: 9.0}
    memory.seen = {"_compute": [100.0, 105.5]}
    assert memory.summary("_compute") == {"workers": 2, "workers_cpu": 3.5, "peak_mib": 500,
                                          "running_mib": 450, "anon_mib": 200,
                                          "seen": [100.0, 105.5]}
    assert memory.summary("other") == {"workers": 0, "workers_cpu": 0, "peak_mib": 0,
                                       "running_mib": 0, "anon_mib": 0, "seen": []}


def test_cpu_used_counts_each_process_from_its_first_sample():
    sampled = rc.RayProcesses(root=0)
    sampled.before = {1: 10.0, 2: 1.0}
    sampled.cpu = {1: 12.5, 2: 1.0, 3: 4.0}       # 3 started after the first sample
    assert sampled.used() == 6.5


def test_ray_processes_sample_a_real_child_and_its_cpu():
    child = subprocess.Popen([sys.executable, "-c", "import sys\nfor _ in range(3*10**6): pass\n"
                              "sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with rc.RayProcesses(child.pid, every=0.05) as sampled:
            time.sleep(1.0)
        assert child.pid in sampled.cpu and sampled.peak == {}     # not a Ray worker
        assert sampled.cpu[child.pid] > 0
    finally:
        child.communicate()


def test_machine_busy_from_proc_stat():
    text = "cpu  100 5 50 1000 20 0 5 0 0 0\ncpu0 1 1 1 1 1 1 1 1 1 1\n"
    assert rc.busy_seconds(text, 100) == 1.6          # user nice system irq softirq: not idle, iowait
    assert rc.machine_busy() > 0


def test_task_spans_and_warm_up_of_a_timeline():
    def event(worker, start, seconds, cat="task::_compute"):
        return {"ph": "X", "cat": cat, "tid": worker, "ts": start * 1e6, "dur": seconds * 1e6}

    events = [event("w1", 10.0, 2.0), event("w1", 12.0, 0.5), event("w1", 12.5, 0.7),
              event("w2", 10.2, 1.6), event("w2", 11.8, 0.4),
              event("w1", 12.0, 9.0, cat="task:execute"),        # a task's part: not counted
              event("w3", 50.0, 1.0)]                            # another job's
    spans = rc.task_spans(events, "_compute", 9.0, 20.0)
    assert spans == {"w1": [(10.0, 2.0), (12.0, 0.5), (12.5, 0.7)], "w2": [(10.2, 1.6),
                                                                           (11.8, 0.4)]}
    found = rc.warm_up(spans)
    assert found["tasks"] == 5 and found["workers"] == 2
    assert abs(found["first_task_s"] - 1.8) < 1e-9 and found["other_tasks_s"] == 0.5
    assert abs(found["span_s"] - 3.2) < 1e-9
    assert rc.warm_up({}) == {"tasks": 0, "workers": 0}


def test_token_env_is_fresh_and_enables_token_auth():
    one, two = rc.token_env(), rc.token_env()
    assert one["RAY_AUTH_MODE"] == "token"
    assert len(one["RAY_AUTH_TOKEN"]) == 64 and one["RAY_AUTH_TOKEN"] != two["RAY_AUTH_TOKEN"]


def test_shard_rows_and_memory_rows_of_the_bench():
    bench = bench_module("index_build")
    assert bench.shard_rows(1_000_000, 16) == 62_500
    assert bench.shard_rows(10, 3) == 4
    runs = [{"driver_mib": 100, "peak_mib": 300, "running_mib": 250, "workers": 2},
            {"driver_mib": 120, "peak_mib": 280, "running_mib": 260, "workers": 2}]
    found = {"memory": {f"postings {e}": runs for e in bench.ENGINES},
             "search": {"local": [{"driver_mib": 90}], "ray": [], "ray standing": runs}}
    rows = bench.memory_rows(found, ("postings",))
    assert [(task, engine) for task, engine, _ in rows] == [
        ("build (postings)", "local"), ("build (postings)", "ray"),
        ("build (postings)", "ray standing"), ("search (both scans)", "local"),
        ("search (both scans)", "ray standing")]
    assert rows[0][2] == {"driver_mib": 120, "peak_mib": 300, "running_mib": 260, "anon_mib": 0,
                          "workers": 2}
    assert rows[3][2]["driver_mib"] == 90 and rows[3][2]["peak_mib"] == 0


def test_result_rows_of_the_build_table():
    bench = bench_module("index_build")
    run = {"job_cpu": 8.0, "machine_cores": 1.5}
    found = {"rows": 1000, "ray_cpus": 2, "bytes": {"postings": 1},
             "times": {"postings local": [2.0, 1.0], "postings ray": [5.0],
                       "postings ray standing": [2.5, 4.0]},
             "memory": {"postings local": [{"job_cpu": 3.0, "machine_cores": 2.0},
                                           {"job_cpu": 0.9, "machine_cores": 1.9}],
                        "postings ray": [run], "postings ray standing": [run, run]}}
    rows = bench.result_rows(found)
    assert [r["Engine"] for r in rows] == [bench.LABELS[e] for e in bench.ENGINES]
    local, _, standing = rows
    assert local["Wall (s)"] == "1.0" and local["Rows/s per core"] == "1,000"       # fastest run
    assert local["Job's CPU (s)"] == "0.9" and local["Cores it got"] == "0.90"
    assert local["Other processes' cores"] == "1.00" and local["Ray per core / local"] == ""
    assert standing["Rows/s per core"] == "200" and standing["Ray per core / local"] == "0.20"
    assert standing["Rows per CPU-second"] == "125" and standing["Cores it got"] == "3.20"
    assert standing["Other processes' cores"] == "0.00"          # never below zero
    assert set(local) == set(bench.COLUMNS)
