"""G and D, conditional or not: DCGAN and SAGAN for 28, 32 and 64 px images, ResNet for 32-256.

    layers.py   what every net shares: conditional input of G, projection head of D, (c)BN,
                self-attention, assert_shape, DCGAN's initialisation
    dcgan.py    dcgan and sagan G and D (28, 32, 64 px)
    resnet.py   SNGAN/BigGAN residual G and D (32-256 px) and their width table
    build.py    G and D from their specs, G from disk (load_model_dir)

z from seeds: components.seeds.latents (every family's G draws from it).

Only torch (and safetensors, on load) is imported here: the registered pyfunc ships components/
and loads G with its minimal requirements, so nothing here may import components.config; the
sizes each arch builds are literals (BASE_RES, RESNET_SIZES), checked equal to config.ARCH_SIZES
by the tests.
"""

from components.families.noise.nets.build import (
    GENERATOR_FILES,
    build_discriminator,
    build_generator,
    load_generator,
    load_model_dir,
)
from components.families.noise.nets.dcgan import (
    ATTENTION_RES,
    BASE_RES,
    Discriminator,
    Generator,
    UpBlock,
)
from components.families.noise.nets.layers import (
    CLASS_EMBED_STD,
    COND_DIM,
    ClassEmbedding,
    CondBatchNorm2d,
    ConditionalInput,
    ProjectionHead,
    SelfAttention,
    apply_norm,
    assert_shape,
    g_norm,
    init_weights,
)
from components.families.noise.nets.resnet import (
    RESNET_MAX_MULT,
    RESNET_SIZES,
    ResDownBlock,
    ResnetDiscriminator,
    ResnetGenerator,
    ResUpBlock,
    resnet_mult,
)

__all__ = [
    "ATTENTION_RES",
    "BASE_RES",
    "CLASS_EMBED_STD",
    "COND_DIM",
    "GENERATOR_FILES",
    "RESNET_MAX_MULT",
    "RESNET_SIZES",
    "ClassEmbedding",
    "CondBatchNorm2d",
    "ConditionalInput",
    "Discriminator",
    "Generator",
    "ProjectionHead",
    "ResDownBlock",
    "ResUpBlock",
    "ResnetDiscriminator",
    "ResnetGenerator",
    "SelfAttention",
    "UpBlock",
    "apply_norm",
    "assert_shape",
    "build_discriminator",
    "build_generator",
    "g_norm",
    "init_weights",
    "load_generator",
    "load_model_dir",
    "resnet_mult",
]
