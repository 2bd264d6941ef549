"""pix2pix (Isola et al. 2017): a U-Net G_AB and a conditional PatchGAN D that judges (A, B)
pairs. One iteration as in the paper: D step on (a, b) vs (a, G(a).detach()), then G step
(fool D + lambda_l1 * |G(a) - b|). The schedule, probe, checkpoints and logging are the shared
loop's; the lr decays as CycleGAN's."""

from __future__ import annotations

import torch

from components.families.translation.common import l1_loss, sample_rows, to_unit
from components.families.translation.cyclegan import TranslationFamily, spread, translator_spec
from components.families.translation.nets import build_discriminator, build_generator
from components.families.translation.options import TranslationTrainConfig as TrainConfig
from components.seeds import rank_seed
from components.train.loop import adam, seed_everything, update_ema, wrap_for_run


class Pix2PixFamily(TranslationFamily):
    stat_names = ("d_loss", "g_loss", "G_AB", "L1", "D_real", "D_fake", "lr_factor")
    generator_names = ("G_AB",)

    def __init__(self, cfg: TrainConfig, data, device: torch.device, rank: int = 0, world: int = 1):
        a_train, b_train, _ = data.pairs("train")
        spec = translator_spec(cfg, a_train.shape[1], b_train.shape[1], a_train.shape[2])
        super().__init__(cfg, spec, device, world)
        seed_everything(cfg.seed)
        self.G_AB = build_generator(spec, "a2b").to(device)
        self.D = build_discriminator(spec, "b").to(device)  # on concat(A, B)
        self.G_AB_ema = self._ema(self.G_AB)
        self.opt_G = adam(self.G_AB.parameters(), cfg.lr_g, cfg, device)
        self.opt_D = adam(self.D.parameters(), cfg.lr_d, cfg, device)
        self.base_lr = {"G": cfg.lr_g, "D": cfg.lr_d}
        seed_everything(rank_seed(cfg.seed, rank))
        self.G_run = wrap_for_run(self.G_AB, cfg, device, world)
        self.D_run = wrap_for_run(self.D, cfg, device, world)
        self.reals_A, self.reals_B = self._resident(a_train), self._resident(b_train)
        test_a, test_b, _ = data.pairs("test")
        self.fixed_A = self._resident(test_a[spread(len(test_a))])
        self.fixed_B = self._resident(test_b[spread(len(test_b))])
        self.grid_rows = 3  # A | G(A) | ground truth B

    def modules(self) -> dict[str, torch.nn.Module]:
        nets = {"G_AB": self.G_AB, "D_B": self.D}
        return nets | ({"G_AB_ema": self.G_AB_ema} if self.use_ema else {})

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    def probe_module(self) -> torch.nn.Module:
        return torch.nn.ModuleDict({"G_AB": self.G_AB_ema if self.use_ema else self.G_AB})

    def fixed_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fixed_A, self.fixed_B

    @torch.no_grad()
    def samples(self) -> torch.Tensor:
        G = self.probe_module()["G_AB"]
        mode = G.training
        G.eval()  # dropout off: the grid shows what inference gives
        a = to_unit(self.fixed_A)
        rows = (a, G(a), to_unit(self.fixed_B))
        G.train(mode)
        return sample_rows(*rows)

    def real_samples(self) -> torch.Tensor:
        return sample_rows(to_unit(self.fixed_A), to_unit(self.fixed_B))

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Aligned pairs: the same rows of A and B."""
        idx = torch.randint(0, len(self.reals_A), (self.batch,), device=self.device)
        return to_unit(self.reals_A[idx]), to_unit(self.reals_B[idx])

    def d_step(self, real_A, real_B, fake_B):
        """D learns (a, b) real vs (a, G(a).detach()) fake."""
        with self.autocast:
            d_real = self.D_run(torch.cat([real_A, real_B], 1)).float()  # (B, 1, P, P)
            d_fake = self.D_run(torch.cat([real_A, fake_B.detach()], 1)).float()
            d_loss = self.d_loss_fn(d_real, d_fake)
        self.opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_D.step()
        return d_loss, d_real, d_fake

    def g_step(self, real_A, real_B, fake_B):
        """G fools the updated D (frozen) and stays near the ground truth (L1)."""
        self.D.requires_grad_(False)
        with self.autocast:
            g_adv = self.g_loss_fn(self.D_run(torch.cat([real_A, fake_B], 1)).float())
            l1 = l1_loss(fake_B.float(), real_B)
            g_loss = g_adv + self.cfg.translation.lambda_l1 * l1
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)
        return g_loss, g_adv, l1

    def step(self, step: int) -> torch.Tensor:
        factor = self._schedule_lr(step)
        real_A, real_B = self.next_batch()
        with self.autocast:
            fake_B = self.G_run(real_A)  # (B, C_B, S, S)
        d_loss, d_real, d_fake = self.d_step(real_A, real_B, fake_B)
        g_loss, g_adv, l1 = self.g_step(real_A, real_B, fake_B)
        if self.use_ema:
            update_ema(self.G_AB_ema, self.G_AB, self.ema_beta)
        with torch.no_grad():
            return torch.stack(
                [
                    d_loss,
                    g_loss,
                    g_adv,
                    l1,
                    torch.sigmoid(d_real).mean(),
                    torch.sigmoid(d_fake).mean(),
                    torch.tensor(factor, device=self.device),
                ]
            ).detach()
