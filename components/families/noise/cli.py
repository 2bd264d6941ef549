"""The noise family's own command, `ganops bench train` (components/cli.py adds each family's
commands through the registry: ModelFamily.add_commands)."""

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
    )

    @bench_app.command("train")
    def bench_train(
        arch: Annotated[str, typer.Option(help="dcgan | sagan | resnet")] = "dcgan",
        image_size: Annotated[
            int | None,
            typer.Option(
                help="dcgan, sagan: 28, 32 or 64 (default 64); "
                "resnet: 32, 64, 128 or 256 (default 32)"
            ),
        ] = None,
        channels: Annotated[int, typer.Option(help="1 or 3")] = 1,
        batch_size: Annotated[int, typer.Option(help="images per step")] = 128,
        steps: BenchStepsOpt = 10,
        device: BenchDeviceOpt = "cpu",
        impl: BenchImplOpt = None,
        repeats: BenchRepeatsOpt = 3,
        params: ParamsOpt = Path("params.yaml"),
        set_: SetOpt = None,
    ) -> None:
        """Images/s of ganops' trainer and of a plain eager fp32 DataLoader loop (bench/)."""
        from components.errors import ConfigError
        from components.families.noise.options import ARCH_SIZES

        if arch not in ARCH_SIZES or channels not in (1, 3):
            raise ConfigError("bench train: --arch dcgan|sagan|resnet, --channels 1|3")
        if image_size is not None and image_size not in ARCH_SIZES[arch]:  # None: bench/'s default
            sizes = "|".join(map(str, ARCH_SIZES[arch]))
            raise ConfigError(f"bench train: --arch {arch} builds --image-size {sizes}")
        _bench(
            "train",
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
