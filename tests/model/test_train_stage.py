"""Model: the train stage's failure, resume and scale-out behaviour, with a real MLflow store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from components import ingest
from components.errors import TrainingDiverged
from components.layout import Layout, read_json
from tests.conftest import ROOT


@pytest.fixture
def digits_project(project, smoke_params):
    """The smoke profile on the bundled digits: params.yaml says so too (stages check it)."""
    params = project / "params.yaml"
    text = params.read_text()
    assert "source: mnist5k" in text  # the smoke profile's source, rewritten below
    params.write_text(text.replace("source: mnist5k", "source: digits", 1))
    layout = Layout(project)
    ingest.run(smoke_params.ingest.model_copy(update={"source": "digits"}), layout)
    return layout


def test_divergence_stops_training_and_fails_the_run(digits_project, smoke_params):
    import mlflow

    from components import train

    cfg = smoke_params.train.model_copy(
        update={"lr_d": 1e30, "lr_g": 1e30, "kimg": 2.0, "log_every": 2, "loss": "wgan"}
    )
    with pytest.raises(TrainingDiverged, match=r"became (nan|inf|-inf) by step \d+"):
        train.run(cfg, digits_project)
    (run,) = mlflow.search_runs(experiment_names=["ganops"], output_format="list")
    assert run.info.status == "FAILED"
    assert not digits_project.models.exists()


def _ganops(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("ganops")), *args]


def _weights(models: Path) -> dict:
    from safetensors.torch import load_file

    return {p.stem: load_file(str(p)) for p in sorted(models.glob("*.safetensors"))}


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_ends_bit_identical(digits_project):
    """`ganops stage train` on the smoke profile (a checkpoint every kimg), cut to 2 kimg: killed
    with SIGKILL after its first checkpoint and started again, it ends with exactly the weights
    of a run that was never interrupted."""
    import torch

    root = digits_project.root
    train = _ganops("stage", "train", "--set", "train.kimg=2")
    subprocess.run(train, cwd=root, check=True, capture_output=True)
    uninterrupted = _weights(digits_project.models)
    assert set(uninterrupted) == {"G", "G_ema", "G_ema_last", "D"}
    shutil.rmtree(digits_project.models)
    shutil.rmtree(digits_project.checkpoints)

    proc = subprocess.Popen(
        train,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not list(digits_project.checkpoints.glob("*/checkpoint-*.pt")):
        assert proc.poll() is None, "train ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not digits_project.models.exists()  # killed mid-run: nothing was published

    again = subprocess.run(train, cwd=root, check=True, capture_output=True, text=True)
    assert "train: resuming from" in again.stdout
    assert "checkpoint-000000016.pt (step 16)" in again.stdout
    resumed = _weights(digits_project.models)
    for name, tensors in uninterrupted.items():
        assert tensors.keys() == resumed[name].keys()
        assert all(torch.equal(tensors[k], resumed[name][k]) for k in tensors), name


@pytest.mark.slow
def test_two_gloo_processes_train_to_identical_weights(project, prefect_harness):
    """`ganops run --set train.devices=2` on CPU: two DDP ranks under torchrun (gloo). Each rank
    hashes its own final weights; rank 0 gathers the hashes into models/run.json."""
    from components.cli import main

    shutil.copy(ROOT / "tests" / "params-tiny.yaml", project / "params.yaml")
    with pytest.raises(SystemExit) as exited:
        main(["run", "--params", "params.yaml", "--set", "train.devices=2"])
    assert exited.value.code in (0, None)
    summary = read_json(project / "models" / "run.json")
    assert summary["devices"] == 2
    first, second = summary["replica_digests"]
    assert first == second and len(first) == 64
    assert read_json(project / "reports" / "registration.json")["version"] == "1"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_torchrun_agents_on_localhost_train_like_one_process(project):
    """`train.nodes=2`: two `ganops stage train` processes (two torchrun agents, one gloo rank
    each) meet in a c10d rendezvous on 127.0.0.1 and end with the weights of the single-process
    run at the same global batch, within float tolerance (no augmentation: its draws are per
    rank). Both agents work in one project folder, like nodes sharing a volume: only global
    rank 0 writes models/ and its launcher returns the run's summary."""
    from components import ingest, train
    from components.config import load_params

    shutil.copy(ROOT / "tests" / "params-tiny.yaml", project / "params.yaml")
    # 4 steps of 32 images, one probe at the end
    short = ["train.kimg=0.128", "train.eval_every_kimg=1", "train.reg.diffaugment="]
    short.append("ingest.source=digits")
    params = load_params(project / "params.yaml", short)
    layout = Layout(project)
    ingest.run(params.ingest, layout)
    assert params.train.devices == 1 and params.train.nodes == 1
    train.run(params.train, layout)  # the reference: one process, the whole batch
    one_process = _weights(layout.models)
    shutil.rmtree(layout.models)

    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [
        subprocess.Popen(
            _ganops("stage", "train", *(f"--set={o}" for o in short), "--set=train.nodes=2"),
            cwd=project,
            env={
                **os.environ,
                "OMP_NUM_THREADS": "1",
                "GANOPS_RDZV_ENDPOINT": endpoint,
                "GANOPS_NODE_RANK": str(i),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (0, 1)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    for node, out in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, out[-3000:]
    assert all(f"--rdzv-endpoint={endpoint}" in out for out in outputs)
    assert sum("train done: {" in out and "'run_id'" in out for out in outputs) == 1
    assert sum("rank 0 ran on another node" in out for out in outputs) == 1
    summary = read_json(layout.train_run)
    assert summary["devices"] == 2 and len(set(summary["replica_digests"])) == 1
    two_nodes = _weights(layout.models)
    assert two_nodes.keys() == one_process.keys() >= {"G", "G_ema", "D"}
    for name, tensors in one_process.items():
        for key, tensor in tensors.items():
            torch.testing.assert_close(two_nodes[name][key], tensor, rtol=1e-4, atol=1e-5)


def test_rendezvous_flags_by_node_count(monkeypatch):
    """One node keeps --standalone; more need node 0's endpoint (params, else env) and get a
    rendezvous id from the config, the same wherever the endpoint came from."""
    from components.errors import ConfigError
    from components.train.distributed import rendezvous_args
    from tests.conftest import smoke_train

    monkeypatch.delenv("GANOPS_RDZV_ENDPOINT", raising=False)
    monkeypatch.delenv("GANOPS_NODE_RANK", raising=False)
    assert rendezvous_args(smoke_train()) == ["--standalone"]
    with pytest.raises(ConfigError, match=r"^train\.rdzv_endpoint: train\.nodes is 2"):
        rendezvous_args(smoke_train("nodes=2"))
    from_params = rendezvous_args(smoke_train("nodes=2", "rdzv_endpoint=node0:29400"))
    assert from_params[:3] == ["--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=node0:29400"]
    monkeypatch.setenv("GANOPS_RDZV_ENDPOINT", "node0:29400")
    monkeypatch.setenv("GANOPS_NODE_RANK", "1")
    from_env = rendezvous_args(smoke_train("nodes=2"))
    assert from_env == [*from_params, "--rdzv-conf=is_host=false"]
    monkeypatch.setenv("GANOPS_NODE_RANK", "2")
    with pytest.raises(ConfigError, match="GANOPS_NODE_RANK: expected 0..1"):
        rendezvous_args(smoke_train("nodes=2"))
    monkeypatch.setenv("GANOPS_RDZV_ENDPOINT", "node0")
    with pytest.raises(ConfigError, match="GANOPS_RDZV_ENDPOINT: expected HOST:PORT"):
        rendezvous_args(smoke_train("nodes=2"))
    assert rendezvous_args(smoke_train()) == ["--standalone"]  # one node: env is not read


def test_checkpoint_folder_is_keyed_by_trajectory_not_schedule(smoke_params, tmp_path):
    """A longer kimg or another logging cadence continues the same run; anything that changes
    what is learnt (optimiser, loss, seed, data) starts its own."""
    from components.train.stage import checkpoint_dir

    layout, cfg = Layout(tmp_path), smoke_params.train
    base = checkpoint_dir(cfg, layout, "data-1")
    same = {
        "kimg": 900.0,
        "log_every": 7,
        "sample_every_kimg": 3.0,
        "eval_every_kimg": 9.0,
        "ckpt_every_kimg": 2.0,
        "rdzv_endpoint": "node0:29400",
    }
    assert checkpoint_dir(cfg.model_copy(update=same), layout, "data-1") == base
    for change in ({"lr_g": 1e-3}, {"loss": "hinge"}, {"seed": 1}, {"arch": "sagan"}):
        assert checkpoint_dir(cfg.model_copy(update=change), layout, "data-1") != base, change
    assert checkpoint_dir(cfg, layout, "data-2") != base


@pytest.mark.slow
def test_longer_run_continues_and_a_new_store_gets_a_new_run(
    digits_project, smoke_params, monkeypatch, capsys
):
    """kimg 1 then kimg 2 on the same store: one MLflow run, resumed. Then kimg 3 against a
    fresh store (the old one gone): the weights resume, a new run records where they came from."""
    import mlflow

    from components import train
    from tests.conftest import use_store

    cfg = smoke_params.train.model_copy(update={"kimg": 1.0, "ckpt_every_kimg": 1.0})
    first = train.run(cfg, digits_project)
    longer = train.run(cfg.model_copy(update={"kimg": 2.0}), digits_project)
    assert "train: resuming from" in capsys.readouterr().out
    assert longer["run_id"] == first["run_id"] and longer["steps"] == 32

    use_store(monkeypatch, f"sqlite:///{digits_project.root / 'other.db'}")
    moved = train.run(cfg.model_copy(update={"kimg": 3.0}), digits_project)
    out = capsys.readouterr().out
    assert "(step 32)" in out and "new MLflow run" in out
    assert moved["steps"] == 47 and moved["run_id"] != first["run_id"]
    run = mlflow.get_run(moved["run_id"])
    assert run.data.tags["resumed_from_run"] == first["run_id"]
    assert run.data.tags["resumed_from_checkpoint"].startswith(str(digits_project.checkpoints))


def test_ada_raises_p_when_d_overfits_a_tiny_dataset(project, smoke_params):
    """ADA on 32 training images (D soon tells them from G's): 40 steps of the train stage
    with p moving 0.128 per update; p leaves 0, and p and r_t reach MLflow, the train log and
    the loss-curves picture."""
    import mlflow
    import pandas as pd
    from PIL import Image

    from components import train
    from components.evaluate.pictures import loss_curves
    from tests.datagen import npz

    layout = Layout(project)
    tiny = npz(project / "tiny.npz", n=40)  # 2 classes; 32 train after the 20% test split
    ingest.run(smoke_params.ingest.model_copy(update={"source": str(tiny)}), layout)
    ada = {"diffaugment": "", "ada": True, "ada_interval": 4, "ada_kimg": 0.5}
    cfg = smoke_params.train.model_copy(
        update={
            "reg": smoke_params.train.reg.model_copy(update=ada),
            "batch_size": 16,
            "kimg": 0.64,  # 40 steps: 10 updates of 16 * 4 / 500 = 0.128
            "log_every": 8,
            "eval_every_kimg": 1.0,
            "sample_every_kimg": 1.0,
        }
    )
    summary = train.run(cfg, layout)
    assert summary["steps"] == 40
    log = pd.read_csv(layout.train_log)
    assert {"ada_p", "ada_r_t"} <= set(log.columns) and len(log) == 5
    assert log["ada_p"].iloc[-1] > 0 and log["ada_p"].between(0, 1).all()
    assert log["ada_r_t"].between(-1, 1).all() and log["ada_r_t"].max() > cfg.reg.ada_target
    client = mlflow.MlflowClient()
    for name in ("ada_p", "ada_r_t"):
        history = client.get_metric_history(summary["run_id"], name)
        assert [m.step for m in history] == [8, 16, 24, 32, 40], name
    picture = loss_curves(layout.train_log, project / "losses.png")
    assert Image.open(picture).size == (1500, 350)  # three panels: losses, D, ADA


def _ada_rank(rank: int, port: int, out: Path) -> None:
    """One gloo rank of a 2-process GanFamily with ADA: 4 steps (two p updates); saves its
    own sign sums before each update and its p and r_t after."""
    import numpy as np
    import torch.distributed as dist

    from components.families.noise.trainer import GanFamily
    from tests.conftest import smoke_train

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        cfg = smoke_train("batch_size=16", "reg.diffaugment=", "reg.ada=true", "reg.ada_interval=2")
        images = np.random.default_rng(0).integers(0, 256, (32, 1, 28, 28), dtype=np.uint8)
        family = GanFamily(cfg, images, np.arange(32) % 10, 10, torch.device("cpu"), rank, 2)
        local, adjust = [], family.adjust_ada

        def spy(step: int) -> None:
            if (step + 1) % cfg.reg.ada_interval == 0:
                local.append(family.ada_signs.clone())  # this rank's, before the all-reduce
            adjust(step)

        family.adjust_ada = spy
        for step in range(4):
            family.step(step)
        torch.save({"local": local, "p": family.ada_p, "r_t": family.ada_r_t}, out / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ada_p_is_the_same_on_every_ddp_rank(tmp_path):
    """Two gloo ranks drawing different batches: r_t is taken over both ranks' reals (the
    all-reduced sign sums), so both ranks hold the same r_t and p."""
    import torch.multiprocessing as mp

    mp.spawn(_ada_rank, args=(_free_port(), tmp_path), nprocs=2)
    ranks = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1)]
    assert not torch.equal(ranks[0]["local"][-1], ranks[1]["local"][-1])  # their own reals
    pooled = ranks[0]["local"][-1] + ranks[1]["local"][-1]  # (sum of signs, count)
    assert pooled[1] == 2 * 8 * 2  # 2 ranks x 8 reals x 2 steps
    for state in ranks:
        assert state["r_t"] == pooled[0] / pooled[1]
    assert ranks[0]["p"] == ranks[1]["p"] and ranks[0]["r_t"] == ranks[1]["r_t"]


def _equal_rank(rank: int, port: int, out: Path) -> None:
    """One gloo rank of a 2-process GanFamily without augmentation: 4 steps, then its nets."""
    import numpy as np
    import torch.distributed as dist

    from components.families.noise.trainer import GanFamily
    from tests.conftest import smoke_train

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        family = _equal_family(GanFamily, smoke_train, np, rank, 2)
        for step in range(4):
            family.step(step)
        states = {name: m.state_dict() for name, m in family.modules().items()}
        torch.save(states, out / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def _equal_family(family_cls, smoke_train, np, rank: int, world: int):
    cfg = smoke_train("batch_size=16", "reg.diffaugment=", "reg.ema_half_life_kimg=0.01")
    images = np.random.default_rng(0).integers(0, 256, (64, 1, 28, 28), dtype=np.uint8)
    return family_cls(cfg, images, np.arange(64) % 10, 10, torch.device("cpu"), rank, world)


def test_ddp_steps_equal_one_process_at_the_same_global_batch(tmp_path):
    """Two gloo ranks of 8 images each end 4 steps with the weights (G, D, G_ema, and G's
    BatchNorm running statistics) of one process stepping batches of 16: every rank draws the
    whole batch from one stream and keeps its half, and BatchNorm normalises over both."""
    import numpy as np
    import torch.multiprocessing as mp

    from components.families.noise.trainer import GanFamily
    from tests.conftest import smoke_train

    mp.spawn(_equal_rank, args=(_free_port(), tmp_path), nprocs=2)
    single = _equal_family(GanFamily, smoke_train, np, 0, 1)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in single.G.modules())
    for step in range(4):
        single.step(step)
    ranks = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1)]
    for name, module in single.modules().items():
        for key, want in module.state_dict().items():
            for state in ranks:
                torch.testing.assert_close(state[name][key], want, rtol=1e-4, atol=1e-5)


def _bn_rank(rank: int, port: int, out: Path) -> None:
    """GlobalBatchNorm on this rank's half of a fixed batch: output, grads, running stats."""
    import torch.distributed as dist

    from components.train.loop import GlobalBatchNorm

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        x, w = _bn_inputs()
        bn = GlobalBatchNorm(3)
        bn.weight.data.copy_(w)
        mine = x[rank * 4 : (rank + 1) * 4].clone().requires_grad_(True)
        y = bn(mine)
        (y * torch.arange(y.numel()).view_as(y)).sum().backward()
        torch.save(
            {"y": y, "dx": mine.grad, "dw": bn.weight.grad, **bn.state_dict()}, out / f"{rank}.pt"
        )
    finally:
        dist.destroy_process_group()


def _bn_inputs():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 5, 5, generator=gen) * 3 + 1, torch.rand(3, generator=gen) + 0.5


def test_global_batchnorm_over_two_ranks_is_batchnorm_over_the_whole_batch(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_bn_rank, args=(_free_port(), tmp_path), nprocs=2)
    x, w = _bn_inputs()
    bn = torch.nn.BatchNorm2d(3)
    bn.weight.data.copy_(w)
    x = x.clone().requires_grad_(True)
    y = bn(x)
    (y * torch.cat([torch.arange(y[:4].numel())] * 2).view_as(y)).sum().backward()
    ranks = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1)]
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y.detach())
    torch.testing.assert_close(torch.cat([r["dx"] for r in ranks]), x.grad)
    dw = ranks[0]["dw"] + ranks[1]["dw"]  # what DDP's all-reduce of parameter grads adds up
    torch.testing.assert_close(dw, bn.weight.grad, rtol=1e-5, atol=1e-5)
    for key, want in bn.state_dict().items():
        for state in ranks:
            torch.testing.assert_close(state[key], want)


def test_probe_networks_are_cached_per_seed(tmp_path):
    """Two seeds train two probe networks (and never read each other's)."""
    import numpy as np

    from components.families.noise.probe import Probe

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (64, 1, 28, 28), dtype=np.uint8), np.arange(64) % 4
    nets = [Probe(images, labels, 4, 8, tmp_path, "hash", n=32, seed=s).net for s in (0, 1)]
    assert len(list(tmp_path.glob("probe-*.safetensors"))) == 2
    first, second = (dict(net.state_dict()) for net in nets)
    assert any(not torch.equal(first[k], second[k]) for k in first)
    again = Probe(images, labels, 4, 8, tmp_path, "hash", n=32, seed=1).net.state_dict()
    assert all(torch.equal(again[k], second[k]) for k in again)


def test_probe_nets_learn_from_at_most_feature_net_images(
    tmp_path, smoke_params, monkeypatch, training_set_sizes
):
    """Above FEATURE_NET_IMAGES train images (per domain for translation), both training probes'
    nets learn from a seeded subset of that size, as evaluate's does: a 50k-image data set does
    not make every training run fit its probe on all of them first."""
    from components.dataset import load_dataset
    from components.evaluate import features
    from components.families.noise.probe import Probe
    from components.families.translation.probe import TranslationProbe

    monkeypatch.setattr(features, "FEATURE_NET_IMAGES", 100)
    seen = training_set_sizes
    for source in ("digits", "mnist2digits"):
        layout = Layout(tmp_path / source)
        ingest.run(smoke_params.ingest.model_copy(update={"source": source}), layout)
        data = load_dataset(layout)
        if source == "digits":
            images, labels = data.split("train")
            assert len(images) > 100
            Probe(images, labels, 10, 8, layout.classifier_cache, "hash", n=32)
        else:
            assert min(len(data.domain(d, "train")[0]) for d in "AB") > 100
            TranslationProbe(data, layout.classifier_cache, "hash", n=32)
    assert seen == [100, 200]  # digits: 100; mnist2digits: 100 per domain
