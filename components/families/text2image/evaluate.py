"""evaluate, text -> image: G_ema drawn for the held-out test captions, judged against real
test images, real floors and controls that must lose.

- `fid`, `kid`: one image per test caption (seeded z) vs the real test images, in the feature
  space of a network trained on the real train images (attribute classes when the data has
  them, else an autoencoder); `_floor`: real train vs real test at the same n.
- `r_precision` (AttnGAN's protocol): each generated image ranks its true caption against 99
  mismatched test captions by cosine similarity in an **evaluation-only** image-text space
  (encoder.py with its own seed, trained on the real train pairs, never in a training loss);
  R = 1, mean and std over folds. `r_precision_ceiling`: the same on the real test images;
  `r_precision_chance` = 1/100.
- `r_precision_shuffled` (control): images drawn for shuffled captions, scored against the
  captions they were not drawn for: must fall to chance, or the text is not used.
- `attr_acc_<name>`, `attr_exact` (when the data has attributes, e.g. the bundled `shapes`):
  attribute classifiers trained on real train images read the generated images; split into
  `_seen` and `_heldout` attribute combinations; `_ceiling`: the same classifiers on real test
  images; `attr_exact_shuffled`: the shuffled-caption control.
- `diversity_ratio`: K samples of one caption, mean pairwise feature distance, over the same
  for real images sharing that caption's attributes (or random real test images): ~0 is
  collapse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.config import EvaluateConfig
from components.datakinds.captioned.read import read
from components.layout import Layout, read_json

R_CANDIDATES = 100  # the true caption and 99 mismatched ones (AttnGAN)
R_FOLDS = 10
EVAL_ENCODER_SEED = 1_000  # the evaluation-only encoder's seed: never the one G trained with
DIVERSITY_PROMPTS, DIVERSITY_K = 20, 8
G_BATCH = 250


def load_generator(models: Path):
    """(G_ema, G's sentence encoder, spec, prompts) from models/ (or a downloaded version), eval
    mode. prompts.encode(texts) -> (token ids for the encoder, warning lines): the ingest word
    vocabulary for the scratch encoder, the shipped tokenizer for a pretrained one."""
    from safetensors.torch import load_file

    from components.families.model_files import require
    from components.families.text2image.encoder import VOCAB_FILE, WordPrompts
    from components.families.text2image.nets import build_generator, build_text_encoder
    from components.families.text2image.options import SPEC_FILE

    spec_path = require(models, SPEC_FILE)
    spec = read_json(spec_path)
    G = build_generator(spec)
    G.load_state_dict(load_file(str(require(models, "G_ema.safetensors"))))
    text_state = load_file(str(require(models, "text_encoder.safetensors")))
    if spec.get("text_model"):  # a pretrained model: its own copy in models/, and a projection
        from components.families.text2image.pretrained import load_text

        text, prompts = load_text(spec_path.parent, spec, text_state)  # its folder is beside
    else:
        text = build_text_encoder(spec)
        text.load_state_dict(text_state)
        prompts = WordPrompts(read_json(require(models, VOCAB_FILE)))
    return G.eval().requires_grad_(False), text.eval().requires_grad_(False), spec, prompts


@torch.no_grad()
def draw(G, sentences: torch.Tensor, seed: int) -> np.ndarray:
    """One uint8 image per sentence vector, z seeded per row (the same seed, the same image)."""
    from components.images import to_uint8
    from components.seeds import latent_seeds, latents

    z = latents(latent_seeds(seed, len(sentences)), G.z_dim)  # (N, z_dim)
    out = [
        to_uint8(G(zb, sb))
        for zb, sb in zip(z.split(G_BATCH), sentences.split(G_BATCH), strict=True)
    ]
    return (
        np.concatenate(out)
        if out
        else np.zeros((0, G.channels, G.image_size, G.image_size), np.uint8)
    )


@torch.no_grad()
def r_precision(
    image_enc, text_enc, images: np.ndarray, tokens: np.ndarray, caption_ids: np.ndarray, seed: int
) -> tuple[float, float]:
    """Mean and std over folds of the share of images whose own caption (tokens[caption_ids[i]])
    ranks first among it and R_CANDIDATES - 1 captions of other images."""
    import torch.nn.functional as F

    from components.families.text2image.encoder import encode_sentences

    img = F.normalize(image_enc(torch.from_numpy(images).float() / 127.5 - 1.0), dim=1)
    txt = F.normalize(encode_sentences(text_enc, tokens), dim=1)  # (M, D)
    rng = np.random.default_rng(seed)
    hits = np.zeros(len(images), dtype=bool)
    for i, own in enumerate(caption_ids):
        others = rng.choice(len(tokens) - 1, R_CANDIDATES - 1, replace=False)
        others = others + (others >= own)  # never the true caption itself
        cands = np.concatenate([[own], others])
        scores = txt[cands] @ img[i]  # (R,)
        hits[i] = int(scores.argmax()) == 0
    folds = np.array_split(rng.permutation(len(hits)), R_FOLDS)
    per_fold = [hits[f].mean() for f in folds if len(f)]
    return float(np.mean(per_fold)), float(np.std(per_fold))


def attribute_targets(
    data, image_rows: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """({attribute: int value per row}, held-out flag per row) of the given image rows, or None
    when the dataset has no attributes."""
    table = read(data).attributes()
    if table is None:
        return None
    names = list(data.manifest["attributes"])
    values = {n: table[n].to_numpy()[image_rows].astype(np.int64) for n in names}
    return values, table["heldout"].to_numpy(dtype=bool)[image_rows]


def evaluate_model(cfg: EvaluateConfig, layout: Layout, folder: Path):
    """The metrics dict and the pictures (caption grid, shuffled control) written into folder."""
    from components.dataset import load_dataset

    data = load_dataset(layout)
    G, text, spec, prompts = load_generator(layout.models)
    m, ctx = score(cfg, layout, data, G, text, prompts)
    paths = [
        caption_grid(
            G, text, ctx["panel_tokens"], ctx["panel_texts"], cfg.seed, folder / "captions.png"
        )
    ]
    return m, paths


def score(cfg: EvaluateConfig, layout: Layout, data, G, text, prompts=None) -> tuple[dict, dict]:
    """The metrics and the caption panel. G reads the test captions through its own encoder
    (`prompts`: the tokenizer of a pretrained one; None or the word vocabulary: the ingest
    token ids); the evaluation-only encoder always reads the ingest token ids."""
    from components.evaluate.features import feature_net, predict
    from components.evaluate.metrics import Pair, Side, compute
    from components.families.text2image.encoder import (
        encode_sentences,
        encoder_folder,
        train_encoders,
    )

    captions = read(data)
    train_rows, train_tokens, _ = captions.split("train")
    rows, tokens, texts = captions.split("test")
    g_tokens = tokens if prompts is None or reads_word_ids(prompts) else prompts.encode(texts)[0]
    images = np.asarray(data.images)
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.n_samples, len(rows))
    pick = np.sort(rng.choice(len(rows), n, replace=False))  # test captions drawn for
    sentences = encode_sentences(text, g_tokens[pick])
    fake = draw(G, sentences, cfg.seed)
    shuffled = rng.permutation(n)
    fake_shuffled = draw(G, sentences[shuffled], cfg.seed)
    test_imgs = np.unique(rows)
    train_imgs = np.unique(train_rows)
    real = images[rng.choice(test_imgs, min(n, len(test_imgs)), replace=False)]
    floor_imgs = images[rng.choice(train_imgs, min(n, len(train_imgs)), replace=False)]
    targets = attribute_targets(data, np.arange(len(images)))
    # the feature space: attribute classes when there are attributes, else an autoencoder
    joint = None
    if targets is not None:
        values, _ = targets
        joint = np.zeros(len(images), dtype=np.int64)
        for v in values.values():
            joint = joint * (int(v.max()) + 1) + v
        _, joint = np.unique(joint, return_inverse=True)
    key = f"{data.manifest['content_hash'][:16]}-t2i-features-e{cfg.classifier_epochs}.safetensors"
    k = int(joint.max()) + 1 if joint is not None else 0
    labels = joint[train_imgs] if k else None
    net = feature_net(
        images[train_imgs], labels, k, cfg.classifier_epochs, 0, layout.classifier_cache / key
    )
    sides = {name: Side(None, predict(net, x)[0]) for name, x in
             (("real", real), ("fake", fake), ("floor", floor_imgs))}  # fmt: skip
    common = {"kid_subset_size": min(cfg.kid_subset_size, n, len(real)), "seed": cfg.seed}
    m: dict = {"n": int(n), "seed": cfg.seed}
    m.update(compute(["fid", "kid"], Pair(sides["real"], sides["fake"], **common)))
    floor = compute(["fid", "kid"], Pair(sides["real"], sides["floor"], **common))
    m.update({f"{key}_floor": v for key, v in floor.items()})
    m["fid_ratio"] = m["fid"] / max(m["fid_floor"], 1e-12)
    # R-precision in the evaluation-only space
    opts = text_options(layout)
    ev = encoder_folder(
        opts, layout, data.manifest["content_hash"], EVAL_ENCODER_SEED, "eval-encoder"
    )
    ev_text, ev_image, _ = train_encoders(
        images,
        train_rows,
        train_tokens,
        len(captions.vocab["tokens"]),
        opts,
        EVAL_ENCODER_SEED,
        ev,
        label="evaluation encoder",
    )
    m["r_precision"], m["r_precision_std"] = r_precision(
        ev_image, ev_text, fake, tokens, pick, cfg.seed
    )
    m["r_precision_ceiling"], _ = r_precision(
        ev_image, ev_text, images[rows[pick]], tokens, pick, cfg.seed
    )
    m["r_precision_shuffled"], _ = r_precision(
        ev_image, ev_text, fake_shuffled, tokens, pick, cfg.seed
    )
    m["r_precision_chance"] = 1.0 / R_CANDIDATES
    m["r_precision_share"] = m["r_precision"] / max(m["r_precision_ceiling"], 1e-12)
    if targets is not None:
        named = named_attributes(data.manifest["attributes"], [texts[i] for i in pick])
        m.update(
            attribute_scores(
                cfg, images, train_imgs, rows[pick], targets, named, fake, fake_shuffled
            )
        )
    m.update(diversity(G, net, text, g_tokens, rows, images, targets, cfg.seed))
    panel = np.linspace(0, len(rows) - 1, 8).round().astype(int)
    return m, {"panel_tokens": g_tokens[panel], "panel_texts": [texts[i] for i in panel]}


def reads_word_ids(prompts) -> bool:
    """Whether G reads the ingest word ids (the scratch encoder)."""
    from components.families.text2image.encoder import WordPrompts

    return isinstance(prompts, WordPrompts)


def text_options(layout: Layout):
    """The text-encoder options the run trained with (train.text, from the run's params)."""
    from components.families.text2image.options import TextEncoderConfig

    spec = read_json(layout.models / "text2image.json")
    # the evaluation-only encoder is always the scratch one, on the ingest vocabulary, even
    # when G read a pretrained model (whose folder need not exist any more)
    return TextEncoderConfig.model_validate({**spec["text_options"], "encoder": "scratch"})


def named_attributes(attributes: dict[str, list[str]], texts: list[str]) -> dict[str, np.ndarray]:
    """attribute -> whether each caption names it (one of its values is among its words): a
    caption that does not say "large" or "small" asks for no size, so none is scored."""
    from components.datakinds.captioned.text import words

    said = [set(words(t)) for t in texts]
    return {
        name: np.array([any(v.lower() in w for v in values) for w in said])
        for name, values in attributes.items()
    }


def attribute_scores(
    cfg, images, train_imgs, gen_rows, targets, named, fake, fake_shuffled
) -> dict:
    """Per-attribute accuracy of generated images over the captions that name the attribute,
    and exact match (every attribute its caption names), seen vs held-out combinations,
    beside the real-image ceiling and the shuffled-caption control."""
    from components.evaluate.features import predict, train_classifier

    values, heldout = targets
    out: dict = {}
    test_imgs = np.setdiff1d(np.arange(len(images)), train_imgs)
    right = {"gen": [], "ceil": [], "shuf": []}
    for name, v in values.items():
        k = int(v.max()) + 1
        clf = train_classifier(images[train_imgs], v[train_imgs], k, cfg.classifier_epochs, seed=0)
        want, asked = v[gen_rows], named[name]
        got = (predict(clf, fake)[1].numpy() == want) | ~asked
        ceil = predict(clf, images[test_imgs])[1].numpy() == v[test_imgs]
        shuf = (predict(clf, fake_shuffled)[1].numpy() == want) | ~asked  # drawn for others
        out[f"attr_acc_{name}"] = float(got[asked].mean()) if asked.any() else float("nan")
        out[f"attr_acc_{name}_ceiling"] = float(ceil.mean())
        right["gen"].append(got), right["ceil"].append(ceil), right["shuf"].append(shuf)
    exact = np.all(right["gen"], axis=0)
    held = heldout[gen_rows]
    out["attr_exact"] = float(exact.mean())
    out["attr_exact_ceiling"] = float(np.all(right["ceil"], axis=0).mean())
    out["attr_exact_shuffled"] = float(np.all(right["shuf"], axis=0).mean())
    if (~held).any():
        out["attr_exact_seen"] = float(exact[~held].mean())
    if held.any():
        out["attr_exact_heldout"] = float(exact[held].mean())
    return out


@torch.no_grad()
def diversity(G, net, text, tokens, rows, images, targets, seed) -> dict:
    """K samples per caption: mean pairwise feature distance over real images' (the images
    sharing the caption's attributes, else random real test images)."""
    from components.evaluate.features import predict
    from components.families.text2image.encoder import encode_sentences

    rng = np.random.default_rng(seed + 1)
    prompts = rng.choice(len(rows), min(DIVERSITY_PROMPTS, len(rows)), replace=False)
    gen_spread, real_spread = [], []
    for j, p in enumerate(prompts):
        s = encode_sentences(text, tokens[[p]]).repeat(DIVERSITY_K, 1)
        feats = predict(net, draw(G, s, seed + 10 * j))[0]
        gen_spread.append(float(torch.pdist(feats).mean()))
        if targets is not None:
            values, _ = targets
            same = np.flatnonzero(np.all([v == v[rows[p]] for v in values.values()], axis=0))
        else:
            same = np.unique(rows)
        pool = rng.choice(same, min(DIVERSITY_K, len(same)), replace=False)
        if len(pool) > 1:
            real_spread.append(float(torch.pdist(predict(net, images[pool])[0]).mean()))
    real = float(np.mean(real_spread)) if real_spread else float("nan")
    return {"diversity": float(np.mean(gen_spread)), "diversity_real": real,
            "diversity_ratio": float(np.mean(gen_spread)) / max(real, 1e-12)}  # fmt: skip


@torch.no_grad()
def caption_grid(G, text, tokens, texts, seed: int, path: Path, seeds: int = 8) -> Path:
    """One row per caption (printed on the left), `seeds` samples per row: a PNG."""
    from PIL import Image, ImageDraw

    from components.families.text2image.encoder import encode_sentences
    from components.layout import atomic_write_bytes

    s = encode_sentences(text, tokens).repeat_interleave(seeds, dim=0)
    z_seed = np.tile(np.arange(seeds), len(tokens))
    from components.images import to_uint8
    from components.seeds import latents

    imgs = to_uint8(G(latents(seed + z_seed, G.z_dim), s))  # (rows * seeds, C, S, S)
    size, label_w = G.image_size * 2, 260
    sheet = Image.new("RGB", (label_w + seeds * size, len(tokens) * size), "white")
    draw_ = ImageDraw.Draw(sheet)
    for r, caption in enumerate(texts):
        draw_.text((4, r * size + size // 2 - 6), caption[:42], fill="black")
        for c in range(seeds):
            img = imgs[r * seeds + c]
            pil = Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0))
            sheet.paste(pil.resize((size, size), Image.NEAREST), (label_w + c * size, r * size))
    import io

    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path
