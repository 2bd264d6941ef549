"""The translation family's own commands, `ganops translate` and `ganops bench translate`
(components/cli.py adds each family's commands through the registry:
ModelFamily.add_commands)."""

# no `from __future__ import annotations`: typer reads these annotations, and the names they use
# are imported inside add_commands (components.cli imports this module while it loads)
from pathlib import Path
from typing import Annotated

import typer


def add_commands(app: typer.Typer, bench_app: typer.Typer) -> None:
    from components.cli import (
        BenchDeviceOpt,
        BenchImplOpt,
        BenchRepeatsOpt,
        BenchStepsOpt,
        ParamsOpt,
        SetOpt,
        _bench,
        _model_name,
        _tracking_for,
    )

    @bench_app.command("translate")
    def bench_translate(
        arch: Annotated[str, typer.Option(help="cyclegan | pix2pix")] = "cyclegan",
        image_size: Annotated[int, typer.Option(help="32, 64, 128 or 256")] = 32,
        channels: Annotated[int, typer.Option(help="1 or 3 (both domains)")] = 1,
        batch_size: Annotated[int, typer.Option(help="image pairs per step")] = 8,
        steps: BenchStepsOpt = 10,
        device: BenchDeviceOpt = "cpu",
        impl: BenchImplOpt = None,
        repeats: BenchRepeatsOpt = 3,
        params: ParamsOpt = Path("params-translate.yaml"),
        set_: SetOpt = None,
    ) -> None:
        """Images/s of ganops' translation trainer (CycleGAN: both Gs and Ds per step; pix2pix: G
        and D) and of a plain eager fp32 loop of the same nets in the reference's style (bench/).
        Widths, blocks, lambdas and speed options come from the params file's train section."""
        from components.errors import ConfigError

        sizes = (32, 64, 128, 256)
        if arch not in ("cyclegan", "pix2pix") or image_size not in sizes or channels not in (1, 3):
            raise ConfigError(
                "bench translate: --arch cyclegan|pix2pix, --image-size 32|64|128|256, "
                "--channels 1|3"
            )
        _bench(
            "translate",
            params,
            set_,
            impl,
            arch=arch,
            image_size=image_size,
            channels=channels,
            batch_size=batch_size,
            steps=steps,
            device=device,
            repeats=repeats,
        )

    @app.command("translate")
    def translate_images(
        src: Annotated[
            Path, typer.Argument(help="an image, a folder (recursive) or .zip/.tar/.tar.gz")
        ],
        dst: Annotated[Path, typer.Argument(help="new folder for the PNGs (mirrors SRC's paths)")],
        direction: Annotated[str, typer.Option(help="a2b | b2a (pix2pix: a2b only)")],
        model: Annotated[
            str | None,
            typer.Option(
                help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/translator, or a "
                "folder [models:/<register.model_name>@champion]"
            ),
        ] = None,
        params: ParamsOpt = Path("params.yaml"),
    ) -> None:
        """Translate images with a registered translator; write one PNG per input (x.jpg ->
        DST/x.png). Inputs of another size are resized as ingest does (shorter side to the model's
        size with LANCZOS, then a centre crop); a gray image feeds a colour model by repeating its
        channel, a colour image for a grayscale model is an error. DST is written whole or not at
        all."""
        model = model or f"models:/{_model_name(None, params)}@champion"
        _tracking_for(model)
        from components.families.translation.translate import translate

        n = translate(model, direction, src, dst)
        typer.echo(f"wrote {n} PNGs to {dst} ({direction}, from {model})")
