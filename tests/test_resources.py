"""Cores and threads: affinity, cgroup quota, OMP_NUM_THREADS, busy cores, the split."""

import pytest

from rave.campaign.resources import (
    allowed_cores,
    busy_cores,
    cgroup_cpu_limit,
    omp_num_threads,
    plan_threads,
)


def test_affinity_mask_sets_the_cores():
    assert allowed_cores({0, 3}, cpu_count=8) == 2
    assert allowed_cores(None, cpu_count=6) == 6  # no affinity call: every CPU


def test_omp_num_threads_is_respected_and_parsed():
    assert omp_num_threads({"OMP_NUM_THREADS": "1"}) == 1
    assert omp_num_threads({"OMP_NUM_THREADS": "4,2"}) == 4
    assert omp_num_threads({"OMP_NUM_THREADS": ""}) is None
    assert omp_num_threads({"OMP_NUM_THREADS": "lots"}) is None
    assert omp_num_threads({}) is None
    assert allowed_cores(range(8), 8, omp_threads=3) == 3
    # it can lower the count but never raise it above the mask
    assert allowed_cores({0, 1}, 8, omp_threads=16) == 2


def test_request_and_quota_lower_the_count():
    assert allowed_cores(range(8), 8, quota_cpus=1.5) == 2  # 1.5 CPUs: 2 threads
    assert allowed_cores(range(8), 8, requested=1) == 1
    assert allowed_cores(range(2), 2, requested=4) == 2
    assert allowed_cores(range(4), 4, requested=0) == 4  # 0 = as many as allowed


def test_cgroup_v2_and_v1_quota_files(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(v2) == pytest.approx(1.5)
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(v1) == pytest.approx(2.0)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(v1) is None
    assert cgroup_cpu_limit(tmp_path / "nothing") is None


def _stat(*cpus):
    """/proc/stat text with (busy, idle) jiffies per CPU (busy in the user column)."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{i} {b} 0 0 {idle} 0 0 0 0 0 0" for i, (b, idle) in enumerate(cpus)]
    return "\n".join(lines + ["intr 1 2 3"])


def test_busy_cores_from_two_readings_of_proc_stat():
    before = _stat((100, 100), (100, 100))
    after = _stat((200, 100), (110, 190))  # cpu0 fully busy, cpu1 10 % busy
    assert busy_cores(before, after) == pytest.approx(1.1)
    assert busy_cores(before, after, cpus={1}) == pytest.approx(0.1)


def test_plan_never_gives_waiting_threads_more_than_the_free_cores():
    idle = plan_threads(3, allowed=2)  # three single-threaded seeds share two cores
    assert (idle.workers, idle.intra_op_threads, idle.cores) == (3, 1, 2)
    busy = plan_threads(3, allowed=2, busy_elsewhere=1.0)
    assert (busy.workers, busy.intra_op_threads, busy.cores) == (3, 1, 1)
    two_on_four = plan_threads(2, allowed=4)  # intra-op threads only for a lone task
    assert (two_on_four.workers, two_on_four.intra_op_threads) == (2, 1)
    lone = plan_threads(1, allowed=4)
    assert (lone.workers, lone.intra_op_threads) == (1, 4)
    many = plan_threads(50, allowed=2)
    assert many.workers == 8 and many.intra_op_threads == 1
    assert "busy with other processes" in busy.describe()
    one_seed = plan_threads(1, allowed=8, busy_elsewhere=2.9)  # 3 cores taken
    assert (one_seed.workers, one_seed.intra_op_threads) == (1, 5)
    blip = plan_threads(2, allowed=2, busy_elsewhere=0.2)  # a daemon's blip costs no core
    assert blip.cores == 2
    everything_busy = plan_threads(2, allowed=2, busy_elsewhere=2.0)
    assert everything_busy.cores == 1  # always at least one
    for tasks in range(1, 6):
        for allowed in range(1, 9):
            for busy_now in (0.0, 1.0, 2.5):
                plan = plan_threads(tasks, allowed, busy_now)
                assert plan.intra_op_threads <= plan.cores
                if plan.intra_op_threads > 1:  # waiting threads: a free core each
                    assert plan.workers * plan.intra_op_threads <= plan.cores
    with pytest.raises(ValueError, match="tasks must be >= 1"):
        plan_threads(0, 2)
