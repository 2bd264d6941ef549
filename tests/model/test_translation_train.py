"""Model: the image-to-image families on the shared loop: they train (losses finite, weights
move, the lr schedule applied), resume exactly (also after SIGKILL), and the train stage writes
a translator that describes itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from components import ingest
from components.dataset import load_dataset
from components.errors import ConfigError
from components.layout import Layout, read_json
from components.train.loop import Callbacks, fit
from tests import datagen
from tests.conftest import smoke_train

TRANSLATE = (  # the translation smoke profile's tiny nets, said again where a test relies on them
    "loss=lsgan",
    "g_channels=8",
    "d_channels=8",
    "translation.n_blocks=1",
    "translation.pool_size=4",
    "batch_size=4",
    "log_every=1",
)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """An unpaired and a paired 32 px dataset, through the real ingest."""
    from components.config import load_params
    from tests.conftest import SMOKE

    out = {}
    for kind in ("unpaired", "paired"):
        root = tmp_path_factory.mktemp(kind)
        source = datagen.translation_folder(root / "src", kind=kind, n=10)
        cfg = load_params(SMOKE, [f"ingest.source={source}", "ingest.image_size=32"]).ingest
        ingest.run(cfg, Layout(root))
        out[kind] = (root, load_dataset(Layout(root)))
    return out


def _family(arch: str, data, *overrides: str):
    from components.families.translation.cyclegan import CycleGanFamily
    from components.families.translation.pix2pix import Pix2PixFamily

    cfg = smoke_train(f"arch={arch}", *TRANSLATE, *overrides)
    cls = CycleGanFamily if arch == "cyclegan" else Pix2PixFamily
    return cfg, cls(cfg, data, torch.device("cpu"))


@pytest.mark.parametrize(("arch", "kind"), [("cyclegan", "unpaired"), ("pix2pix", "paired")])
def test_family_trains_and_decays_its_lr(tmp_path, datasets, arch, kind):
    _, data = datasets[kind]
    cfg, family = _family(arch, data, "kimg=0.02", "translation.decay_start=0.4")
    before = {
        name: {k: v.clone() for k, v in module.state_dict().items()}
        for name, module in family.modules().items()
    }
    logged = []
    state = fit(family, cfg, tmp_path, Callbacks(log=lambda step, row: logged.append(row)))
    assert state.step == 5 and len(logged) == 5
    assert all(np.isfinite(v) for row in logged for k, v in row.items() if k in family.stat_names)
    for name, module in family.modules().items():
        moved = [not torch.equal(v, before[name][k]) for k, v in module.state_dict().items()]
        assert any(moved), f"{name} did not move"
    # lr: 1 until 40% of 5 steps, then linear to 0: the factors logged at steps 1..5
    factors = [row["lr_factor"] for row in logged]
    assert factors == pytest.approx([1.0, 1.0, 1.0, 2 / 3, 1 / 3])
    assert family.opt_G.param_groups[0]["lr"] == pytest.approx(cfg.lr_g / 3)
    grid = family.samples()
    assert grid.shape[0] == family.grid_rows * len(family.fixed_A)  # a fixed input per column
    if arch == "cyclegan":  # labelled on both sides: the semantic term is on and paid
        assert set(family.classify) == {"A", "B"}
        assert all(row["semantic"] > 0 for row in logged)


def test_semantic_classifiers_are_frozen_deterministic_and_leave_the_rng(datasets):
    """Each domain's classifier reads its real images' classes, is frozen, and is trained the
    same way twice without moving the global RNG (a resumed run retrains it bit for bit)."""
    from components.families.translation.semantic import semantic_loss, train_classifier

    _, data = datasets["unpaired"]
    images, labels = data.domain("A", "train")
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    one = train_classifier(x, y, 2, epochs=30, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    two = train_classifier(x, y, 2, epochs=30, seed=1)
    for (name, p), q in zip(one.state_dict().items(), two.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert not any(p.requires_grad for p in one.parameters())
    unit = x.float() / 127.5 - 1
    assert (one(unit).argmax(1) == y).float().mean() > 0.9  # it reads its own domain
    right, wrong = semantic_loss(one, unit, y), semantic_loss(one, unit, 1 - y)
    assert right < wrong
    unlabelled = torch.full_like(y, -1)
    assert semantic_loss(one, unit, unlabelled) == 0  # -1: left out


def test_unlabelled_or_switched_off_trains_without_classifiers(datasets, tmp_path):
    _, data = datasets["unpaired"]
    assert _family("cyclegan", data, "translation.lambda_semantic=0")[1].classify == {}
    root = tmp_path / "flat"
    source = datagen.translation_folder(root / "src", kind="unpaired", classes=(), n=10)
    from components.config import load_params
    from tests.conftest import SMOKE

    cfg = load_params(SMOKE, [f"ingest.source={source}", "ingest.image_size=32"]).ingest
    ingest.run(cfg, Layout(root))
    assert _family("cyclegan", load_dataset(Layout(root)))[1].classify == {}


@pytest.mark.parametrize(("arch", "kind"), [("cyclegan", "unpaired"), ("pix2pix", "paired")])
def test_family_resumes_bit_identical(tmp_path, datasets, arch, kind):
    """6 steps in one go (a checkpoint at step 3) vs resuming that step-3 checkpoint for the
    last 3: pools, lr schedule position, optimisers and RNG restored, bit-identical."""
    from tests.model.test_models import assert_resume_is_exact

    _, data = datasets[kind]
    overrides = ("ckpt_every_kimg=0.012", "kimg=0.024")
    cfg, _ = _family(arch, data, *overrides)
    assert_resume_is_exact(lambda: _family(arch, data, *overrides)[1], cfg, tmp_path, 3)


def test_arch_must_fit_the_dataset_kind(datasets):
    from components.train.distributed import Rank
    from components.train.stage import build_family

    root, data = datasets["unpaired"]
    me = Rank(rank=0, local_rank=0, world=1)
    with pytest.raises(ConfigError, match="pix2pix needs a paired dataset"):
        build_family(smoke_train("arch=pix2pix", *TRANSLATE), Layout(root), data, "cpu", me)
    with pytest.raises(
        ConfigError,
        match=r"dcgan needs a generate dataset, but ingest.source .* is unpaired \(use cyclegan\)",
    ):
        build_family(smoke_train(), Layout(root), data, "cpu", me)


def _ganops(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("ganops")), *args]


@pytest.mark.slow
def test_sigkill_then_restart_ends_bit_identical(datasets, tmp_path):
    """`ganops stage train` of a CycleGAN, SIGKILLed after its first checkpoint and started
    again, ends with exactly the weights of an uninterrupted run; models/ describes itself."""
    import shutil

    from safetensors.torch import load_file

    from tests.conftest import SMOKE_BY_FAMILY

    root, _ = datasets["unpaired"]
    shutil.copy(SMOKE_BY_FAMILY["translation"], root / "params.yaml")
    sets = [f"train.{o}" for o in (*TRANSLATE, "arch=cyclegan", "kimg=0.1", "ckpt_every_kimg=0.05")]
    ingested = read_json(Layout(root).manifest)["params"]  # what the stage checks
    sets += [f"ingest.{key}={json.dumps(value)}" for key, value in ingested.items()]
    cmd = _ganops("stage", "train", *[a for o in sets for a in ("--set", o)])
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    models = Layout(root).models
    weights = {p.stem: load_file(str(p)) for p in models.glob("*.safetensors")}
    assert {"G_AB", "G_BA", "D_A", "D_B"} <= set(weights)
    spec = read_json(models / "translator.json")
    assert spec["arch"] == "cyclegan" and spec["image_size"] == 32
    for folder in (models, Layout(root).checkpoints):
        subprocess.run(["rm", "-rf", str(folder)], check=True)

    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen(cmd, cwd=root, env=env, start_new_session=True, **quiet)
    deadline = time.monotonic() + 300
    while not list(Layout(root).checkpoints.glob("*/checkpoint-*.pt")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    again = subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True, text=True)
    assert "train: resuming from" in again.stdout
    for name, tensors in weights.items():
        resumed = load_file(str(models / f"{name}.safetensors"))
        assert all(torch.equal(tensors[k], resumed[k]) for k in tensors), name


def test_semantic_classifiers_train_longer_on_small_splits():
    """train.translation.semantic_min_steps: the default's 4,000 digits per domain keep their 5
    epochs (63 batches each: 315 steps), a held-out split of 1,280 gets 15 (300 steps), and 0
    turns the floor off."""
    from components.families.translation.semantic import classifier_epochs

    assert classifier_epochs(4000, 5, 300) == 5
    assert classifier_epochs(1280, 5, 300) == 15
    assert classifier_epochs(1280, 5, 0) == 5
    assert classifier_epochs(10, 2, 300) == 300  # one batch per epoch
