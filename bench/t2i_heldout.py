"""A text-to-image check on data ganops was not built on: drawn scenes with other shapes, colours
and phrasings than the bundled `shapes`, judged by an independent judge (small CNNs of its own,
not ganops' metrics).

    python bench/t2i_heldout.py make DIR   # DIR/data/{train,test}, labels.jsonl, prompts.{txt,json}
    ganops run --params params-text2image.yaml --set ingest.source=DIR/data \\
        --set register.model_name=t2i-heldout
    ganops generate --model models:/t2i-heldout@champion --prompts DIR/prompts.txt -n 6 \\
        --out GENERATED
    python bench/t2i_heldout.py judge DIR GENERATED
    python bench/t2i_heldout.py judge DIR --real  # the judge's ceiling: real scenes as GENERATED

Scenes: 32x32 RGB, one shape on a plain background, drawn with PIL at 4x and LANCZOS-resized:

- shape: star (5 points, pointing up), cross (a plus sign, arms 0.34 r thick), diamond (a square
  standing on a corner); each fills a box of half-side r;
- colour (each channel jittered by up to +-12): orange, purple, cyan, lime, pink (COLOURS);
- size: small (r = 5.5 px) or big (r = 9.5 px), r jittered by up to +-6%;
- position: top, bottom, left or right: the shape 1.5 px in from that edge (+-1 px along,
  +-3 px across when small, +-1.5 px when big);
- background (not judged): dark (gray 20-60) or light (gray 195-235), tinted by up to +-6.

Held out: orange star, cyan cross, pink diamond appear in test only (every colour and shape
still appears in train, in other combinations). Train: 25 images of each size x position of the
12 seen colour x shape pairs (2,400); test: 5 of each size x position of all 15 pairs (600).
Each image has 2-4 captions from distinct PHRASINGS ("there is a small orange star near the
top", "left: a large cyan cross", "diamond (pink) at the bottom of a dark picture", ...): every
caption names the shape and colour, 7 of 8 phrasings the position, 5 of 8 the size, 2 of 8 the
background. prompts.txt: 192 test captions in the 4 phrasings that name shape, colour, size and
position (and not the background): each size x position of the 12 seen pairs once (96) and of
the 3 held-out pairs in all 4 phrasings (96); prompts.json holds each line's attributes, and
labels.jsonl every image's (outside data/, which is what ingest reads).

The judge, trained here on DIR's real train images (25 epochs, about 50 s on one CPU thread):
two small CNNs, one reading the colour off the RGB image, one reading shape, size and position
off a colour-blind silhouette (each pixel's distance from the median border colour), so that no
shape is guessed from its colour (the held-out pairs would reward that: an RGB net called every
orange star a cross or a diamond). Training wear: +-2 px shifts, and a blur, pixel noise and a
brightness ramp, so a GAN's soft edges and grain are not misread. `real_test` is its accuracy
on DIR's real test images (the ceiling; seen and held-out pairs apart). Each generated image is
scored against its caption's attributes (metadata.jsonl's text matched to prompts.json):
per-attribute accuracy and `all_attributes` (every named attribute right at once), over all
images and for the `seen` and `heldout` pairs, and `diversity_ratio`: per prompt, the mean
pairwise distance of its images in the judge's penultimate features (both nets') over the same
for the real test images of its colour, shape, size and position (5), averaged over prompts (a
mean of noisy ratios leans high: real scenes as GENERATED give 1.06). `shuffled` pairs each
prompt's images with another prompt's attributes (20 random permutations, averaged): it must
fall to `chance` (the sum of squared shares of each attribute's values among the prompts).
`--real` judges fresh real scenes (seed 1, never written to DIR) drawn for each prompt's
attributes, 6 each, as a ganops generate folder (`real DIR OUT` writes one): what a perfect
generator would score (1.0 everywhere on a 3,000-image DIR; shuffled 0.33 / 0.22 / 0.50 /
0.24, all attributes 0.010).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CANVAS, SUPERSAMPLE = 32, 4
SHAPES = ("star", "cross", "diamond")
COLOURS = {
    "orange": (240, 130, 25),
    "purple": (130, 50, 200),
    "cyan": (30, 195, 215),
    "lime": (140, 215, 35),
    "pink": (240, 105, 180),
}
SIZES = {"small": 5.5, "big": 9.5}  # half-side in px of the box the shape fills
POSITIONS = ("top", "bottom", "left", "right")
BACKGROUNDS = {"dark": (20, 61), "light": (195, 236)}  # gray level range
HELD_OUT = (("orange", "star"), ("cyan", "cross"), ("pink", "diamond"))  # test only
PER_CELL = {"train": 25, "test": 5}  # images per colour x shape x size x position
ATTRIBUTES = ("shape", "colour", "size", "position")  # what the judge reads
# {sa}/{sb}: the size as small/big or little/large
PHRASINGS = (
    "there is a {sa} {colour} {shape} near the {position}",
    "{position}: a {sb} {colour} {shape}",
    "{shape} ({colour}, {sa}) hugging the {position} edge",
    "one {sb} {shape} painted {colour}, towards the {position}",
    "{colour} {shape} near the {position}",
    "{shape} ({colour}) at the {position} of a {background} picture",
    "a {sa} {colour} {shape} on a {background} backdrop, {position} side",
    "{sb} {colour} {shape}",
)
PROMPT_PHRASINGS = (0, 1, 2, 3)  # name shape, colour, size and position; not the background
SIZE_WORDS = {"small": ("small", "little"), "big": ("big", "large")}


def _cells():
    return [(z, p) for z in SIZES for p in POSITIONS]


def _caption(phrasing: int, a: dict[str, str]) -> str:
    sa, sb = SIZE_WORDS[a["size"]]
    return PHRASINGS[phrasing].format(sa=sa, sb=sb, **a)


def _scene(rng: np.random.Generator, colour: str, shape: str, size: str, position: str) -> dict:
    """One scene of a cell: its drawing (fill, ground, r, centre) and attributes."""
    r = SIZES[size] * rng.uniform(0.94, 1.06)
    along = CANVAS / 2 - r - 1.5 + rng.uniform(-1, 1)  # from the centre towards the edge
    across = rng.uniform(-1, 1) * (3.0 if size == "small" else 1.5)
    sign = -1 if position in ("left", "top") else 1
    dx, dy = (sign * along, across) if position in ("left", "right") else (across, sign * along)
    background = str(rng.choice(list(BACKGROUNDS)))
    fill = np.clip(np.array(COLOURS[colour]) + rng.integers(-12, 13, 3), 0, 255)
    ground = np.clip(rng.integers(*BACKGROUNDS[background]) + rng.integers(-6, 7, 3), 0, 255)
    return {
        "attributes": {"shape": shape, "colour": colour, "size": size, "position": position}
        | {"background": background},
        "fill": tuple(int(v) for v in fill),
        "ground": tuple(int(v) for v in ground),
        "r": float(r),
        "centre": (CANVAS / 2 + dx, CANVAS / 2 + dy),
    }


def _outline(shape: str, x: float, y: float, r: float) -> list[tuple[float, float]]:
    """The polygon of a shape filling the box of half-side r centred on (x, y)."""
    if shape == "star":  # outer radius R: width 1.902 R, height 1.809 R (bounding box centred)
        outer = r / 0.951
        y0 = y + (outer - 0.809 * outer) / 2
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, outer, 0.5 * outer)
        return [(x + q * np.cos(t), y0 + q * np.sin(t)) for q, t in zip(radii, angles, strict=True)]
    if shape == "cross":
        t = 0.34 * r
        corners = [(t, r), (t, t), (r, t), (r, -t), (t, -t), (t, -r)]
        half = corners + [(-u, -v) for u, v in corners]
        return [(x + u, y + v) for u, v in half]
    return [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]  # diamond


def draw(scene: dict) -> Image.Image:
    k = SUPERSAMPLE
    img = Image.new("RGB", (CANVAS * k, CANVAS * k), scene["ground"])
    x, y = (c * k for c in scene["centre"])
    points = _outline(scene["attributes"]["shape"], x, y, scene["r"] * k)
    ImageDraw.Draw(img).polygon(points, fill=scene["fill"])
    return img.resize((CANVAS, CANVAS), Image.Resampling.LANCZOS)


def _prompts() -> list[dict]:
    """The balanced test prompts: each size x position of the seen pairs once, of the held-out
    pairs in every prompt phrasing."""
    rows = []
    for ci, colour in enumerate(COLOURS):
        for si, shape in enumerate(SHAPES):
            heldout = (colour, shape) in HELD_OUT
            for i, (size, position) in enumerate(_cells()):
                a = {"shape": shape, "colour": colour, "size": size, "position": position}
                chosen = PROMPT_PHRASINGS if heldout else [PROMPT_PHRASINGS[(i + ci + si) % 4]]
                for p in chosen:
                    rows.append({"text": _caption(p, a), **a, "heldout": heldout, "phrasing": p})
    order = np.random.default_rng(11).permutation(len(rows))
    return [rows[i] for i in order]


def make(root: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    counts, labels = {}, []
    for split in ("train", "test"):
        plan = [
            (colour, shape, size, position)
            for colour in COLOURS
            for shape in SHAPES
            if split == "test" or (colour, shape) not in HELD_OUT
            for size, position in _cells()
            for _ in range(PER_CELL[split])
        ]
        folder = root / "data" / split
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for i, j in enumerate(rng.permutation(len(plan))):
            scene = _scene(rng, *plan[j])
            name = f"{i:05d}.png"
            draw(scene).save(folder / name)
            chosen = rng.choice(len(PHRASINGS), int(rng.integers(2, 5)), replace=False)
            texts = [_caption(int(p), scene["attributes"]) for p in chosen]
            lines.append(json.dumps({"file_name": name, "text": texts}))
            heldout = (scene["attributes"]["colour"], scene["attributes"]["shape"]) in HELD_OUT
            labels.append(json.dumps({"split": split, "file_name": name} | scene["attributes"]
                                     | {"heldout": heldout}))  # fmt: skip
        (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[split] = len(plan)
    (root / "labels.jsonl").write_text("\n".join(labels) + "\n", encoding="utf-8")
    prompts = _prompts()
    (root / "prompts.txt").write_text("".join(p["text"] + "\n" for p in prompts), "utf-8")
    (root / "prompts.json").write_text(json.dumps(prompts, indent=1) + "\n", "utf-8")
    return counts | {"prompts": len(prompts)}


def write_real(root: Path, out: Path, per_prompt: int = 6, seed: int = 1) -> None:
    """Fresh real scenes for each prompt's attributes, as `ganops generate` writes a folder."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, p in enumerate(json.loads((root / "prompts.json").read_text("utf-8"))):
        for j in range(per_prompt):
            name = f"{i:04d}-{j:02d}.png"
            draw(_scene(rng, p["colour"], p["shape"], p["size"], p["position"])).save(out / name)
            lines.append(json.dumps({"file_name": name, "text": p["text"], "seed": j}))
    (out / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- the judge -----------------------------------------------------------------------------


def _pixels(path: Path) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    if img.size != (CANVAS, CANVAS):
        img = img.resize((CANVAS, CANVAS), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255


def _load_split(root: Path, split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Images and attribute labels (DIR/labels.jsonl) of a split."""
    folder = root / "data" / split
    rows = [json.loads(s) for s in (root / "labels.jsonl").read_text("utf-8").splitlines()]
    rows = [r for r in rows if r and r["split"] == split]
    images = np.stack([_pixels(folder / r["file_name"]) for r in rows])
    return images, {k: np.array([r[k] for r in rows]) for k in ATTRIBUTES}


VALUES = {"shape": list(SHAPES), "colour": list(COLOURS), "size": list(SIZES)}
VALUES["position"] = list(POSITIONS)


def _with_silhouette(images):
    """(N, 4, H, W) torch: RGB and a colour-blind silhouette, each pixel's distance from the
    median colour of the image's border, over its 98th percentile (capped at 1.5)."""
    import torch

    x = torch.as_tensor(images)
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], 2)
    ground = border.median(2).values[:, :, None, None]
    dist = ((x - ground) ** 2).sum(1, keepdim=True).sqrt()
    top = torch.quantile(dist.flatten(1), 0.98, dim=1).clamp_min(0.05)
    return torch.cat([x, (dist / top[:, None, None, None]).clamp(max=1.5)], 1)


def _roughen(x, gen):
    """Training-time wear, so that a GAN's soft edges and grain do not throw the judge: a blur
    (half the batches), pixel noise and a brightness ramp across the image, random per image."""
    import torch

    n = len(x)
    if torch.rand((), generator=gen) < 0.5:
        sigma = 0.3 + 0.7 * torch.rand((), generator=gen)
        k = torch.exp(-(torch.arange(-1.0, 2.0) ** 2) / (2 * sigma**2))
        k = (k[:, None] * k[None]) / k.sum() ** 2
        x = torch.nn.functional.conv2d(
            torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"),
            k.expand(3, 1, 3, 3).contiguous(),
            groups=3,
        )
    noise = torch.randn(x.shape, generator=gen) * 0.06 * torch.rand(n, 1, 1, 1, generator=gen)
    angle = 2 * torch.pi * torch.rand(n, 1, 1, generator=gen)
    grid = torch.linspace(-0.5, 0.5, CANVAS)
    ramp = torch.cos(angle) * grid[None, None, :] + torch.sin(angle) * grid[None, :, None]
    ramp = ramp * 0.15 * torch.rand(n, 1, 1, generator=gen)
    return (x + noise + ramp[:, None]).clamp(0, 1)


GEOMETRY = ("shape", "size", "position")  # read off the silhouette; colour off the RGB


def _train_judge(images: np.ndarray, labels: dict[str, np.ndarray], epochs: int, seed: int = 0):
    """Two small CNNs: one reads the colour from RGB, one shape, size and position from the
    silhouette alone (so no shape can be guessed from its colour, as the held-out pairs would
    invite). Returns predict(images) -> ({attribute: value indices}, penultimate features)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    def trunk(channels: int, width: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(4 * width * (CANVAS // 8) ** 2, 8 * width), nn.ReLU(),
        )  # fmt: skip

    colour_net, geometry_net = trunk(3, 8), trunk(1, 16)
    heads = nn.ModuleDict({k: nn.Linear(128, len(VALUES[k])) for k in GEOMETRY})
    heads["colour"] = nn.Linear(64, len(VALUES["colour"]))
    nets = nn.ModuleList([colour_net, geometry_net, heads])
    drop = nn.Dropout(0.2)

    def features(x4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return colour_net(x4[:, :3]), geometry_net(x4[:, 3:])

    x = torch.from_numpy(images)
    y = {k: torch.tensor([VALUES[k].index(v) for v in labels[k]]) for k in ATTRIBUTES}
    opt = torch.optim.Adam(nets.parameters(), lr=2e-3)
    steps = epochs * ((len(x) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    nets.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            dy, dx = torch.randint(0, 5, (2,), generator=gen).tolist()  # +-2 px, edges repeated
            padded = nn.functional.pad(x[idx], (2, 2, 2, 2), mode="replicate")
            batch = _roughen(padded[:, :, dy : dy + CANVAS, dx : dx + CANVAS], gen)
            colour, geometry = features(_with_silhouette(batch))
            logits = {k: heads[k](drop(geometry)) for k in GEOMETRY}
            logits["colour"] = heads["colour"](drop(colour))
            loss = sum(nn.functional.cross_entropy(logits[k], y[k][idx]) for k in ATTRIBUTES)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    nets.eval()

    @torch.no_grad()
    def predict(batch: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        pred, feats = {k: [] for k in ATTRIBUTES}, []
        for part in _with_silhouette(torch.from_numpy(batch)).split(256):
            colour, geometry = features(part)
            for k in GEOMETRY:
                pred[k].append(heads[k](geometry).argmax(1))
            pred["colour"].append(heads["colour"](colour).argmax(1))
            feats.append(torch.cat([colour, geometry], 1))
        return {k: torch.cat(v).numpy() for k, v in pred.items()}, torch.cat(feats).numpy()

    return predict


def _mean_pairwise(feats: np.ndarray) -> float:
    d = np.sqrt(((feats[:, None] - feats[None]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(feats), 1)].mean())


def _scores(pred: dict[str, np.ndarray], want: list[dict], heldout: np.ndarray) -> dict:
    """Per-attribute accuracy (over the images whose caption names it) and all_attributes (every
    named attribute right at once): over all images, then the seen and the held-out pairs."""
    right, named = {}, {}
    for k in ATTRIBUTES:
        named[k] = np.array([w.get(k) is not None for w in want])
        said = [VALUES[k][i] for i in pred[k]]
        right[k] = np.array([n and s == w[k] for s, w, n in zip(said, want, named[k], strict=True)])
    every = np.logical_and.reduce([right[k] | ~named[k] for k in ATTRIBUTES])

    def summary(rows: np.ndarray) -> dict | None:
        if not rows.any():
            return None
        out = {k: float(right[k][rows & named[k]].mean()) for k in ATTRIBUTES}
        for size in VALUES["size"]:  # the shape of small and of big shapes apart
            asked = rows & named["shape"] & np.array([w.get("size") == size for w in want])
            out[f"shape_{size}"] = float(right["shape"][asked].mean()) if asked.any() else None
        return out | {"all_attributes": float(every[rows].mean()), "n": int(rows.sum())}

    return summary(np.ones(len(want), bool)) | {
        "seen": summary(~heldout),
        "heldout": summary(heldout),
    }


def judge(root: Path, generated: Path, epochs: int = 25) -> dict:
    t0 = time.time()
    train_x, train_y = _load_split(root, "train")
    test_x, test_y = _load_split(root, "test")
    predict = _train_judge(train_x, train_y, epochs)
    train_s = time.time() - t0
    test_pred, test_feats = predict(test_x)
    test_want = [{k: test_y[k][i] for k in ATTRIBUTES} for i in range(len(test_x))]
    test_held = np.array([(w["colour"], w["shape"]) in HELD_OUT for w in test_want])

    prompts = {p["text"]: p for p in json.loads((root / "prompts.json").read_text("utf-8"))}
    rows = [json.loads(s) for s in (generated / "metadata.jsonl").read_text("utf-8").splitlines()]
    rows = [r for r in rows if r]
    matched = [r for r in rows if " ".join(r["text"].split()) in prompts]
    if not matched:
        raise SystemExit(f"{generated}/metadata.jsonl: no caption matches {root}/prompts.json")
    texts = [" ".join(r["text"].split()) for r in matched]
    want = [prompts[t] for t in texts]
    heldout = np.array([w["heldout"] for w in want])
    pred, feats = predict(np.stack([_pixels(generated / r["file_name"]) for r in matched]))

    groups: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        groups.setdefault(t, []).append(i)
    cell = {}  # (colour, shape, size, position) -> real test images' rows
    for i, w in enumerate(test_want):
        cell.setdefault(tuple(w[k] for k in ("colour", "shape", "size", "position")), []).append(i)
    ratios, ratio_held = [], []
    for t, members in groups.items():
        w = prompts[t]
        real = cell.get(tuple(w[k] for k in ("colour", "shape", "size", "position")), [])
        if len(members) < 2 or len(real) < 2:
            continue
        ratios.append(_mean_pairwise(feats[members]) / _mean_pairwise(test_feats[real]))
        ratio_held.append(w["heldout"])
    ratios, ratio_held = np.array(ratios), np.array(ratio_held, bool)

    rng = np.random.default_rng(0)
    names = list(groups)
    shuffled = []
    for _ in range(20):  # each prompt's images against another prompt's attributes
        perm = rng.permutation(len(names))
        while (perm == np.arange(len(names))).any() and len(names) > 1:
            perm = rng.permutation(len(names))
        other = {names[i]: prompts[names[j]] for i, j in enumerate(perm)}
        fake_want = [other[t] for t in texts]
        shuffled.append(_scores(pred, fake_want, np.zeros(len(texts), bool)))
    keys = [*ATTRIBUTES, "all_attributes"]
    chance = {}
    for k in ATTRIBUTES:
        _, n = np.unique([w[k] for w in want], return_counts=True)
        chance[k] = float(((n / n.sum()) ** 2).sum())

    result = {"n_images": len(matched), "n_prompts": len(groups)}
    result |= {"n_unmatched": len(rows) - len(matched)} | _scores(pred, want, heldout)
    for part, mask in (("seen", ~ratio_held), ("heldout", ratio_held)):
        if result[part] is not None and mask.any():
            result[part]["diversity_ratio"] = float(ratios[mask].mean())
    if len(ratios):
        result["diversity_ratio"] = float(ratios.mean())
        result["diversity_ratio_median"] = float(np.median(ratios))
    return result | {
        "shuffled": {k: float(np.mean([s[k] for s in shuffled])) for k in keys},
        "chance": chance,
        "real_test": _scores(test_pred, test_want, test_held),
        "judge_train_images": len(train_x),
        "judge_train_s": round(train_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("root", type=Path)
    r = sub.add_parser("real", help="fresh real scenes per prompt, as a ganops generate folder")
    r.add_argument("root", type=Path)
    r.add_argument("out", type=Path)
    j = sub.add_parser("judge")
    j.add_argument("root", type=Path)
    j.add_argument("generated", type=Path, nargs="?")
    j.add_argument("--real", action="store_true", help="judge fresh real scenes instead")
    j.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args()
    t0 = time.time()
    if args.cmd == "make":
        counts = make(args.root)
        print(json.dumps(counts | {"seconds": round(time.time() - t0, 1)}))
    elif args.cmd == "real":
        write_real(args.root, args.out)
        print(f"wrote {args.out}")
    elif args.real:
        with tempfile.TemporaryDirectory() as tmp:
            write_real(args.root, Path(tmp))
            result = judge(args.root, Path(tmp), args.epochs)
        print(json.dumps(result | {"generated": "real (--real)"}))
    elif args.generated is None:
        parser.error("judge: give GENERATED or --real")
    else:
        print(json.dumps(judge(args.root, args.generated, args.epochs)))


if __name__ == "__main__":
    main()
