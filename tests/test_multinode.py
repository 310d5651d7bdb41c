"""Several nodes on one machine: ``torchrun --nnodes=2`` node launches on 127.0.0.1, gloo on the CPU.

Each node is its own ``torchrun`` (``--node_rank=0`` and ``1``, one rendezvous on a free port), as
on two machines; here they share this machine's file system, as a cluster's nodes must share the
run's output folder (docs/runners.md). Every launch has a deadline, and when one node fails the
others are given a short grace and then stopped, so a failure never leaves the test waiting.
"""
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT, launch_in_process
from lavis_vila.datasets.synthetic import generate
from lavis_vila.tasks.global_batch import BatchSplit, log_global_batch

TRAIN_CFG = REPO_ROOT / "projects" / "vila" / "train" / "keyframe_qa_tiny_vila.yaml"
EVAL_CFG = REPO_ROOT / "projects" / "vila" / "eval" / "keyframe_qa_tiny_vila_eval.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
DEADLINE_S = 600  # a whole launch, every node (generous: the machine may be shared)
GRACE_S = 30  # the other nodes' time to stop by themselves once one node has failed


@dataclass
class Node:
    rank: int
    returncode: int
    log: str  # torchrun's and its workers' stdout and stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Kill a node's torchrun and its workers (the session it leads)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def torchrun_nodes(module: str, cfg: Path, args: list, logs: Path, nodes: int = 2, per_node: int = 1,
                   cwds=None) -> list:
    """Launch ``nodes`` torchrun nodes of ``per_node`` processes on 127.0.0.1; each node's result."""
    port, cwds = free_port(), cwds or [REPO_ROOT] * nodes
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for rank in range(nodes):
        command = [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}", f"--node_rank={rank}",
                   f"--nproc_per_node={per_node}", "--master_addr=127.0.0.1", f"--master_port={port}",
                   "-m", module, "--cfg-path", str(cfg), *map(str, args)]
        with open(logs / f"node{rank}.log", "w") as log:
            processes.append(subprocess.Popen(command, cwd=cwds[rank], env=ENV, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
    deadline = time.monotonic() + DEADLINE_S
    try:
        while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in processes):  # a node failed: the others get a grace
                deadline = min(deadline, time.monotonic() + GRACE_S)
            time.sleep(0.5)
    finally:
        for process in processes:
            stop(process)  # -9 for a node still running at the deadline
    return [Node(rank, p.returncode, (logs / f"node{rank}.log").read_text()) for rank, p in enumerate(processes)]


def all_succeeded(nodes: list) -> None:
    failed = [node for node in nodes if node.returncode != 0]
    if failed:
        pytest.fail("\n".join(f"node {n.rank} exited with {n.returncode}:\n{n.log[-4000:]}" for n in failed))


def job_dir(out: Path) -> Path:
    (job,) = [p for p in out.iterdir() if p.is_dir()]
    return job


# ---------------------------------------------------------------- the global batch, logged per node


def test_each_nodes_first_process_logs_the_global_batch_with_its_node_rank(caplog):
    torchrun_node_1 = {"GROUP_RANK": "1", "GROUP_WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "4"}
    with caplog.at_level(logging.INFO):
        log_global_batch(BatchSplit(4, 2, 8), recipe=64, max_per_gpu=4, warmup_steps=250, warmup_samples=8000,
                         environ=torchrun_node_1)
    assert ("global batch 64 = 8 process(es) x 4 per process x 2 accumulation step(s); warm-up 250 iteration(s) "
            "= 8000 samples (run.warmup_samples 8000) [node rank 1; 2 node(s) x 4 process(es) per node = world size 8]") in caplog.text


def test_the_other_processes_of_a_node_log_no_global_batch(caplog):
    second_process = {"GROUP_RANK": "1", "GROUP_WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}
    with caplog.at_level(logging.INFO):
        log_global_batch(BatchSplit(4, 2, 8), recipe=64, max_per_gpu=4, environ=second_process)
    assert "global batch" not in caplog.text


def test_without_torchrun_the_run_is_one_node_of_its_world_size(caplog):
    with caplog.at_level(logging.INFO):
        log_global_batch(BatchSplit(8, 1, 1), recipe=None, max_per_gpu=8, environ={})
    assert "[node rank 0; 1 node(s) x 1 process(es) per node = world size 1]" in caplog.text


# ---------------------------------------------------------------- two torchrun nodes on 127.0.0.1


@pytest.fixture(scope="module")
def benchmark_300(tmp_path_factory):
    """300 validation questions of keyframe_qa (8 frames of 32 x 32 each)."""
    return generate(str(tmp_path_factory.mktemp("kq300") / "keyframe_qa"), seed=3, num_train=0, num_val=300)


def eval_options(data, out):
    """The tiny ``vila`` with its seeded random weights (the same on every rank and in one process)."""
    return ["--options", f"datasets.keyframe_qa.data_dir={data}", f"run.output_dir={out}", "model.load_finetuned=False",
            "run.batch_size_eval=16"]


@pytest.mark.slow
def test_two_torchrun_nodes_evaluate_300_questions_with_the_predictions_of_one_process(benchmark_300, tmp_path):
    one = launch_in_process("lavis_vila.evaluate",
                            ["--cfg-path", EVAL_CFG, *eval_options(benchmark_300, tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-4000:]
    all_succeeded(torchrun_nodes("lavis_vila.evaluate", EVAL_CFG, eval_options(benchmark_300, tmp_path / "two"),
                                 tmp_path / "logs"))
    one_dir, two_dir = (job_dir(tmp_path / name) / "result" for name in ("one", "two"))
    one_results = json.loads((one_dir / "val_epochbest.json").read_text())
    two_results = json.loads((two_dir / "val_epochbest.json").read_text())
    assert len(two_results) == len({r["qid"] for r in two_results}) == 300
    assert len({tuple(r["frame_idx"]) for r in one_results}) > 10  # choices that differ per question: a real test
    assert two_results == one_results
    metrics = [json.loads((d / "val_epochbest_metrics.json").read_text()) for d in (one_dir, two_dir)]
    assert metrics[1] == metrics[0] and metrics[1]["total"] == 300


@pytest.mark.slow
def test_a_node_that_cannot_see_the_output_folder_stops_every_node_and_no_result_is_written(tmp_path):
    """Each node resolves the relative ``run.output_dir`` against its own working directory, as
    nodes without a shared file system would: two folders where the run needs one."""
    data = generate(str(tmp_path / "keyframe_qa"), seed=4, num_train=0, num_val=6)
    cwds = [tmp_path / "node0", tmp_path / "node1"]
    for cwd in cwds:
        cwd.mkdir()
    nodes = torchrun_nodes("lavis_vila.evaluate", EVAL_CFG, eval_options(data, "out"), tmp_path / "logs", cwds=cwds)
    for node in nodes:
        assert node.returncode != 0, f"node {node.rank} succeeded:\n{node.log[-4000:]}"
        assert "FolderNotSharedError" in node.log and "is not one folder for every rank" in node.log, node.log[-4000:]
        assert "rank 1 on host" in node.log and "has no such folder" in node.log
        assert "rank 0 on host" in node.log and "cannot see the files of rank(s) [1]" in node.log
        assert "on a file system that every node mounts at the same path" in node.log
    result_dir = job_dir(cwds[0] / "out") / "result"
    assert list(result_dir.iterdir()) == []  # no partial results, and no marker file left behind
    assert not (cwds[1] / "out").exists()


@pytest.mark.slow
def test_the_shared_folder_check_runs_once_a_run_not_at_every_validation(tmp_path, monkeypatch):
    """Two epochs validate twice and then evaluate the best: one check of the one result folder. One
    process (the calls are counted; the check's collective is the multi-node tests' business)."""
    from lavis_vila.tasks import videoqa_mc

    checked, check = [], videoqa_mc.check_shared_folder

    def counted_check(folder, what):
        checked.append(folder)
        check(folder, what)

    monkeypatch.setattr(videoqa_mc, "check_shared_folder", counted_check)
    data = generate(str(tmp_path / "keyframe_qa"), seed=7, num_train=8, num_val=4)
    options = [*train_options(data, tmp_path / "out"), "run.max_epoch=2", "run.global_batch_size=4",
               "run.batch_size_train=4"]
    result = launch_in_process("lavis_vila.train", ["--cfg-path", TRAIN_CFG, *options])
    assert result.returncode == 0, result.stderr[-4000:]
    result_dir = job_dir(tmp_path / "out") / "result"
    assert len(list(result_dir.glob("val_epoch*_metrics.json"))) == 3  # epochs 0 and 1, then the best
    assert checked == [str(result_dir)]


def train_options(data, out):
    return ["--options", f"datasets.keyframe_qa.data_dir={data}", f"run.output_dir={out}", "run.max_epoch=1",
            "run.global_batch_size=8", "run.batch_size_train=8", "run.batch_size_eval=4", "run.warmup_steps=2",
            "run.log_freq=1"]


@pytest.mark.slow
def test_two_nodes_of_one_process_train_as_one_node_of_two_with_the_global_batch_logged_per_node(tmp_path):
    data = generate(str(tmp_path / "keyframe_qa"), seed=5, num_train=16, num_val=4)
    two_nodes = torchrun_nodes("lavis_vila.train", TRAIN_CFG, train_options(data, tmp_path / "2x1"),
                               tmp_path / "logs2x1")
    all_succeeded(two_nodes)
    one_node = torchrun_nodes("lavis_vila.train", TRAIN_CFG, train_options(data, tmp_path / "1x2"),
                              tmp_path / "logs1x2", nodes=1, per_node=2)
    all_succeeded(one_node)

    arithmetic = ("global batch 8 = 2 process(es) x 4 per process x 1 accumulation step(s); "
                  "warm-up 2 iteration(s) = 16 samples")
    for node in two_nodes:
        assert f"{arithmetic} [node rank {node.rank}; 2 node(s) x 1 process(es) per node = world size 2]" in node.log
    assert one_node[0].log.count(f"{arithmetic} [node rank 0; 1 node(s) x 2 process(es) per node = world size 2]") == 1

    weights = [torch.load(job_dir(tmp_path / name) / "checkpoint_0.pth", map_location="cpu", weights_only=True)["model"]
               for name in ("2x1", "1x2")]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=0, atol=1e-6, msg=key)
