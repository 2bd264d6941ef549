"""CycleGAN (Zhu, Park et al. 2017): two generators G_AB, G_BA and two PatchGAN discriminators
D_A, D_B on unpaired domains. One iteration follows the reference's optimize_parameters():
forward both cycles; G step (adversarial + cycle + identity, D frozen); D step on real vs a fake
drawn from each D's history pool. lr constant, then linearly to 0 from train.translation
.decay_start of the run. The schedule, probe, checkpoints and logging are the shared loop's.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from components.families.translation.common import (
    ImagePool,
    cycle_loss,
    identity_loss,
    linear_decay_factor,
    sample_rows,
    set_lr,
    to_unit,
)
from components.families.translation.nets import build_discriminator, build_generator, make_spec
from components.families.translation.options import TranslationTrainConfig as TrainConfig
from components.seeds import rank_seed
from components.train.loop import (
    adam,
    autocast_context,
    ema_beta,
    seed_everything,
    total_steps,
    update_ema,
    wrap_for_run,
)
from components.train.losses import LOSSES

GRID_COLUMNS = 8  # fixed test images per grid row


def spread(n: int, k: int = GRID_COLUMNS) -> np.ndarray:
    """k indices spread evenly over n rows (test splits are sorted by class: one of each)."""
    return np.linspace(0, n - 1, min(k, n)).round().astype(int)


def translator_spec(cfg: TrainConfig, channels_a: int, channels_b: int, image_size: int) -> dict:
    """The spec a registered translator rebuilds from (components/translators.py)."""
    t = cfg.translation
    return make_spec(
        cfg.arch,
        channels_a,
        channels_b,
        image_size,
        g_channels=cfg.g_channels,
        d_channels=cfg.d_channels,
        n_blocks=t.n_blocks,
        upsample=t.upsample,
    )


class TranslationFamily:
    """What CycleGAN and pix2pix share: resident uint8 data per domain, the EMA copies, the lr
    schedule, fixed test inputs for the sample grids, and the schedule's interface."""

    def __init__(self, cfg: TrainConfig, spec: dict, device: torch.device, world: int):
        self.cfg, self.spec, self.device, self.world = cfg, spec, device, world
        self.batch = cfg.batch_size // world
        self.total_steps = total_steps(cfg)
        self.autocast = autocast_context(cfg, device)
        self.d_loss_fn, self.g_loss_fn = LOSSES[cfg.loss]
        self.use_ema = cfg.reg.ema_half_life_kimg > 0
        self.ema_beta = ema_beta(cfg.batch_size, cfg.reg.ema_half_life_kimg)
        self.grid_rows = 0  # set by the families

    def _resident(self, images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images)).to(self.device)  # uint8

    def _ema(self, G: torch.nn.Module) -> torch.nn.Module:
        return copy.deepcopy(G).eval().requires_grad_(False)

    def _schedule_lr(self, step: int) -> float:
        factor = linear_decay_factor(step, self.total_steps, self.cfg.translation.decay_start)
        set_lr(self.optimizers(), self.base_lr, factor)
        return factor

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def real_samples(self) -> torch.Tensor:
        return sample_rows(*[to_unit(x) for x in self.fixed_inputs()])

    def model_files(self, best_state: dict | None) -> dict[str, dict]:
        """models/ files: each G (the probe's best when kept; `_last` its final state) and D."""
        files = {name: m.state_dict() for name, m in self.modules().items() if "_ema" not in name}
        chosen = self.probe_module().state_dict() if best_state is None else best_state
        for name in self.generator_names:
            last = files[name] if not self.use_ema else self.modules()[f"{name}_ema"].state_dict()
            prefix = f"{name}."
            files[name] = {k[len(prefix) :]: v for k, v in chosen.items() if k.startswith(prefix)}
            if best_state is not None:
                files[f"{name}_last"] = last
        return files


class CycleGanFamily(TranslationFamily):
    stat_names = (
        "d_loss",
        "g_loss",
        "G_AB",
        "G_BA",
        "D_A",
        "D_B",
        "cycle_A",
        "cycle_B",
        "idt_A",
        "idt_B",
        "semantic",
        "lr_factor",
    )
    generator_names = ("G_AB", "G_BA")

    def __init__(self, cfg: TrainConfig, data, device: torch.device, rank: int = 0, world: int = 1):
        a_train, a_labels = data.domain("A", "train")
        b_train, b_labels = data.domain("B", "train")
        spec = translator_spec(cfg, a_train.shape[1], b_train.shape[1], a_train.shape[2])
        super().__init__(cfg, spec, device, world)
        seed_everything(cfg.seed)  # the same initial weights on every rank
        self.G_AB = build_generator(spec, "a2b").to(device)
        self.G_BA = build_generator(spec, "b2a").to(device)
        self.D_A = build_discriminator(spec, "a").to(device)
        self.D_B = build_discriminator(spec, "b").to(device)
        self.G_AB_ema, self.G_BA_ema = self._ema(self.G_AB), self._ema(self.G_BA)
        self.opt_G = adam([*self.G_AB.parameters(), *self.G_BA.parameters()], cfg.lr_g, cfg, device)
        self.opt_D = adam([*self.D_A.parameters(), *self.D_B.parameters()], cfg.lr_d, cfg, device)
        self.base_lr = {"G": cfg.lr_g, "D": cfg.lr_d}
        self.pool_A = ImagePool(cfg.translation.pool_size)  # fakes of domain A, for D_A
        self.pool_B = ImagePool(cfg.translation.pool_size)
        seed_everything(rank_seed(cfg.seed, rank))
        self.run = {
            name: wrap_for_run(getattr(self, name), cfg, device, world)
            for name in ("G_AB", "G_BA", "D_A", "D_B")
        }
        self.reals_A, self.reals_B = self._resident(a_train), self._resident(b_train)
        self.labels_A, self.labels_B = self._resident(a_labels), self._resident(b_labels)
        self.classify = self._semantic_classifiers(cfg, data)  # {"A": C_A, "B": C_B} or {}
        test_a, _ = data.domain("A", "test")
        test_b, _ = data.domain("B", "test")
        self.fixed_A = self._resident(test_a[spread(len(test_a))])  # fixed test inputs of the grids
        self.fixed_B = self._resident(test_b[spread(len(test_b))])
        self.grid_rows = 6  # A | A->B | A->B->A, B | B->A | B->A->B
        # identity loss needs G_AB(b) to be comparable with b: same channels both ways
        t = cfg.translation
        same_channels = spec["channels_a"] == spec["channels_b"]
        self.lambda_idt = t.lambda_identity * t.lambda_cycle if same_channels else 0.0

    def _semantic_classifiers(self, cfg: TrainConfig, data) -> dict[str, torch.nn.Module]:
        """Each domain's frozen classifier when train.translation.lambda_semantic > 0 and both
        domains are labelled (every train image); {} otherwise."""
        from components.families.translation.semantic import classifier_epochs, train_classifier

        t, k = cfg.translation, len(data.manifest["class_names"])
        labels = {"A": self.labels_A, "B": self.labels_B}
        if t.lambda_semantic <= 0 or k < 2 or any(bool((y < 0).any()) for y in labels.values()):
            return {}
        reals = {"A": self.reals_A, "B": self.reals_B}
        epochs = {
            d: classifier_epochs(len(reals[d]), t.semantic_epochs, t.semantic_min_steps)
            for d in reals
        }
        return {
            d: train_classifier(reals[d], labels[d], k, epochs[d], cfg.seed + i)
            for i, d in enumerate(("A", "B"))
        }

    # -- what the schedule asks for -------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        nets = {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B}
        if self.use_ema:
            nets |= {"G_AB_ema": self.G_AB_ema, "G_BA_ema": self.G_BA_ema}
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    def extra_state(self) -> dict:
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.pool_A.load_state_dict(state["pool_A"])
        self.pool_B.load_state_dict(state["pool_B"])

    def probe_module(self) -> torch.nn.Module:
        """Both generators the probe measures (the EMA copies when train.reg keeps them)."""
        G_AB, G_BA = (self.G_AB_ema, self.G_BA_ema) if self.use_ema else (self.G_AB, self.G_BA)
        return torch.nn.ModuleDict({"G_AB": G_AB, "G_BA": G_BA})

    def fixed_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fixed_A, self.fixed_B

    @torch.no_grad()
    def samples(self) -> torch.Tensor:
        nets = self.probe_module()
        was_training = [m.training for m in nets.values()]
        nets.eval()
        a, b = to_unit(self.fixed_A), to_unit(self.fixed_B)
        fake_b, fake_a = nets["G_AB"](a), nets["G_BA"](b)
        rows = (a, fake_b, nets["G_BA"](fake_b), b, fake_a, nets["G_AB"](fake_a))
        for m, mode in zip(nets.values(), was_training, strict=True):
            m.train(mode)
        return sample_rows(*rows)

    # -- one iteration ----------------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, ...]:
        """Independent draws from each domain (unpaired): (B, C_A, S, S), (B, C_B, S, S) and
        their labels (-1 where unlabelled)."""
        ia = torch.randint(0, len(self.reals_A), (self.batch,), device=self.device)
        ib = torch.randint(0, len(self.reals_B), (self.batch,), device=self.device)
        a, b = to_unit(self.reals_A[ia]), to_unit(self.reals_B[ib])
        return a, b, self.labels_A[ia], self.labels_B[ib]

    def g_step(self, real_A, real_B, y_A, y_B):
        """Both G fool the Ds and keep the cycles (and identities); Ds frozen."""
        run, t = self.run, self.cfg.translation
        for D in (self.D_A, self.D_B):
            D.requires_grad_(False)
        with self.autocast:
            fake_B, fake_A = run["G_AB"](real_A), run["G_BA"](real_B)
            rec_A, rec_B = run["G_BA"](fake_B), run["G_AB"](fake_A)
            g_ab = self.g_loss_fn(run["D_B"](fake_B).float())
            g_ba = self.g_loss_fn(run["D_A"](fake_A).float())
            cyc_a = cycle_loss(rec_A.float(), real_A)
            cyc_b = cycle_loss(rec_B.float(), real_B)
            idt_a = idt_b = torch.zeros((), device=self.device)
            if self.lambda_idt > 0:
                idt_a = identity_loss(run["G_AB"](real_B).float(), real_B)  # G_AB(b) ~ b
                idt_b = identity_loss(run["G_BA"](real_A).float(), real_A)
            g_loss = g_ab + g_ba + t.lambda_cycle * (cyc_a + t.cycle_b_factor * cyc_b)
            g_loss = g_loss + self.lambda_idt * (idt_a + idt_b)
            sem = torch.zeros((), device=self.device)
            if self.classify:  # the translations read as their sources' classes
                from components.families.translation.semantic import semantic_loss

                sem = semantic_loss(self.classify["B"], fake_B, y_A)
                sem = sem + semantic_loss(self.classify["A"], fake_A, y_B)
                g_loss = g_loss + t.lambda_semantic * sem
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_G.step()
        for D in (self.D_A, self.D_B):
            D.requires_grad_(True)
        stats = (g_loss, g_ab, g_ba, cyc_a, cyc_b, idt_a, idt_b, sem)
        return fake_A.detach(), fake_B.detach(), stats

    def d_step(self, real_A, real_B, fake_A, fake_B):
        """Each D: real vs a fake from its history pool."""
        run = self.run
        with self.autocast:
            d_a = self.d_loss_fn(
                run["D_A"](real_A).float(), run["D_A"](self.pool_A.query(fake_A)).float()
            )
            d_b = self.d_loss_fn(
                run["D_B"](real_B).float(), run["D_B"](self.pool_B.query(fake_B)).float()
            )
        self.opt_D.zero_grad(set_to_none=True)
        (d_a + d_b).backward()
        self.opt_D.step()
        return d_a, d_b

    def step(self, step: int) -> torch.Tensor:
        factor = self._schedule_lr(step)
        real_A, real_B, y_A, y_B = self.next_batch()
        fake_A, fake_B, g = self.g_step(real_A, real_B, y_A, y_B)
        d_a, d_b = self.d_step(real_A, real_B, fake_A, fake_B)
        if self.use_ema:
            update_ema(self.G_AB_ema, self.G_AB, self.ema_beta)
            update_ema(self.G_BA_ema, self.G_BA, self.ema_beta)
        g_loss, g_ab, g_ba, cyc_a, cyc_b, idt_a, idt_b, sem = g
        with torch.no_grad():
            factor_t = torch.tensor(factor, device=self.device)
            return torch.stack(
                [d_a + d_b, g_loss, g_ab, g_ba, d_a, d_b, cyc_a, cyc_b, idt_a, idt_b, sem, factor_t]
            ).detach()
