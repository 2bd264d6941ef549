"""Training throughput of the text-to-image family's step (components/families/text2image/
trainer.py, as the ganops schedule runs it) against a plain eager loop of the same nets and the
same DF-GAN iteration, in the style of the DF-GAN reference code: (image, caption) pairs behind
a shuffling DataLoader of float images, the frozen sentence encoder run on every batch, the
mismatched captions made by rolling the batch, hinge losses and the matching-aware gradient
penalty, Adam, losses read back every step (`.item()`).

Both sides: the params' G, D and the scratch sentence encoder and its image encoder (randomly
initialised and frozen: the contrastive pretraining before the GAN is not timed; the image
encoder serves `train.match_weight` and `train.d_encoder_features`, the penalty is lazy as
`train.ma_gp_every` says), on the bundled `shapes` captions
ingested into a temp folder, at the params' image size and batch. The ganops side keeps the
images (uint8) and the train captions' sentence vectors resident, draws batches by index from
its seeded stream, updates G_ema every step and reads the stats back once per `log_every`;
where `train.channels_last` makes it NHWC (auto on CPU and CUDA) it is timed again in NCHW,
the plain loop's format. The modes take turns for `--rounds` rounds; one JSON line per mode
(the median images per second after a warm-up, and each round's); run it alone (on a shared
machine, under the CPU lock):

    python bench/text2image_train.py --params params-text2image.yaml --steps 40 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def plain(cfg, text, image, images: np.ndarray, rows: np.ndarray, tokens: np.ndarray,
          steps: int, warmup: int) -> float:  # fmt: skip
    """The eager loop: images per second over `steps` after `warmup`."""
    from components.families.text2image.nets import (
        Discriminator,
        Generator,
        contrastive_loss,
        matching_aware_gp,
        semantic_loss,
    )

    torch.manual_seed(cfg.seed)
    C, S = images.shape[1], images.shape[2]
    dim = text.sentence_dim
    G = Generator(cfg.z_dim, dim, C, S, cfg.g_channels)
    w = cfg.semantic_weight  # the semantic head, as the trainer runs it when > 0
    aid = image if cfg.d_encoder_features else None  # the frozen encoder's features in D
    D = Discriminator(dim, C, S, cfg.d_channels, cfg.d_condition, w > 0, aid)
    opt_G = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    trained = [p for p in D.parameters() if p.requires_grad]
    opt_D = torch.optim.Adam(trained, cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    data = torch.utils.data.TensorDataset(  # one pair per caption, as the reference lists them
        torch.from_numpy(images[rows].astype(np.float32) / 127.5 - 1.0),
        torch.from_numpy(tokens.astype(np.int64)),
    )
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True,
                                         drop_last=True)  # fmt: skip
    done, start = 0, None
    while done < warmup + steps:
        for real, caption in loader:
            if done == warmup:
                start = time.perf_counter()
            with torch.no_grad():
                s = text(caption)  # the frozen encoder, every batch
            s_mis = torch.cat([s[1:], s[:1]])  # DF-GAN: the batch rolled by one
            fake = G(torch.randn(len(real), cfg.z_dim), s)
            if w > 0:
                d_real, read = D(real, s, read=True)
            else:
                d_real, read = D(real, s), None
            d_mis, d_fake = D(real, s_mis), D(fake.detach(), s)
            d_loss = F.relu(1 - d_real).mean() + 0.5 * (
                F.relu(1 + d_fake).mean() + cfg.mismatch_weight * F.relu(1 + d_mis).mean()
            )
            if read is not None:
                d_loss = d_loss + w * semantic_loss(read, s)
            if done % cfg.ma_gp_every == 0:  # lazy when train.ma_gp_every > 1
                gp = matching_aware_gp(D, real, s, cfg.ma_gp_power)
                d_loss = d_loss + cfg.ma_gp_weight * cfg.ma_gp_every * gp
            opt_D.zero_grad()
            d_loss.backward()
            opt_D.step()
            if w > 0:
                d_gen, read = D(fake, s, read=True)
                g_loss = -d_gen.mean() + w * semantic_loss(read, s)
            else:
                g_loss = -D(fake, s).mean()
            if cfg.match_weight > 0:  # the frozen image encoder's matching loss
                g_loss = g_loss + cfg.match_weight * contrastive_loss(
                    image(fake), s, cfg.text.temperature
                )
            opt_G.zero_grad()
            g_loss.backward()
            opt_G.step()
            d_loss.item(), g_loss.item()
            done += 1
            if done == warmup + steps:
                break
    return steps * cfg.batch_size / (time.perf_counter() - start)


def ganops(cfg, text, image, images: np.ndarray, rows: np.ndarray, tokens: np.ndarray,
           steps: int, warmup: int) -> float:  # fmt: skip
    """Text2ImageTrainer.step as the schedule calls it: images per second."""
    from components.families.text2image.encoder import encode_sentences
    from components.families.text2image.trainer import Text2ImageTrainer

    sentences = encode_sentences(text, tokens)  # once, as train's build does
    panel = sentences[:8]
    trainer = Text2ImageTrainer(
        cfg, images, rows, sentences, panel, text, torch.device("cpu"), image_encoder=image
    )
    stats = torch.zeros(len(trainer.stat_names))
    for i in range(warmup):
        stats += trainer.step(i)
    start = time.perf_counter()
    for i in range(steps):
        stats += trainer.step(warmup + i)
        if (i + 1) % cfg.log_every == 0:
            stats.tolist()
    stats.tolist()
    return steps * cfg.batch_size / (time.perf_counter() - start)


def shapes(params) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The bundled shapes captions, ingested into a temp folder: (images, caption rows, token
    ids, vocabulary size) of the train split."""
    from components import ingest
    from components.datakinds.captioned.read import read
    from components.dataset import load_dataset
    from components.layout import Layout

    with tempfile.TemporaryDirectory(prefix="ganops-bench-t2i-") as tmp:
        cfg = params.ingest.model_copy(update={"source": "shapes"})
        ingest.run(cfg, Layout(Path(tmp)))
        data = load_dataset(Layout(Path(tmp)))
        captions = read(data)
        rows, tokens, _ = captions.split("train")
        return np.array(data.images), rows, np.array(tokens), len(captions.vocab["tokens"])


def main() -> None:
    from components.config import load_params
    from components.families.text2image.nets import ImageEncoder, TextEncoder
    from components.train.loop import use_channels_last

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params-text2image.yaml")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="turns of every mode; median printed")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    params = load_params(a.params)
    cfg = params.train
    images, rows, tokens, vocab_size = shapes(params)
    torch.manual_seed(0)
    t = cfg.text
    text = TextEncoder(vocab_size, t.embed_dim, t.sentence_dim).eval().requires_grad_(False)
    C, S = images.shape[1], images.shape[2]  # the contrastive step's image side, frozen too
    image = ImageEncoder(C, S, t.sentence_dim).eval().requires_grad_(False)
    common = {"batch": cfg.batch_size, "image": list(images.shape[1:]), "threads": a.threads,
              "g_channels": cfg.g_channels, "d_channels": cfg.d_channels,
              "d_condition": cfg.d_condition, "steps": a.steps,
              "match_weight": cfg.match_weight, "d_encoder_features": cfg.d_encoder_features,
              "ma_gp_every": cfg.ma_gp_every}  # fmt: skip
    modes = {"plain eager loop": lambda: plain(cfg, text, image, images, rows, tokens,
                                               a.steps, a.warmup)}  # fmt: skip
    layout = "NHWC" if use_channels_last(cfg, torch.device("cpu")) else "NCHW"
    modes[f"ganops trainer ({layout}, train.channels_last {cfg.channels_last})"] = lambda: ganops(
        cfg, text, image, images, rows, tokens, a.steps, a.warmup
    )
    if layout == "NHWC":  # the same step in the plain loop's memory format
        nchw = cfg.model_copy(update={"channels_last": False})
        modes["ganops trainer (NCHW, train.channels_last false)"] = lambda: ganops(
            nchw, text, image, images, rows, tokens, a.steps, a.warmup
        )
    rates = {mode: [] for mode in modes}
    for _ in range(a.rounds):  # the modes take turns: a shared machine's drift hits them alike
        for mode, run in modes.items():
            rates[mode].append(run())
    for mode, got in rates.items():
        row = {"mode": mode, "img_per_s": round(float(np.median(got)), 1),
               "rounds": [round(r, 1) for r in got], **common}  # fmt: skip
        print(json.dumps(row))


if __name__ == "__main__":
    main()
