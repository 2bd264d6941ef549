"""Code: params loading, overrides and the messages a user sees."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from components.config import STAGES, load_params
from components.errors import ConfigError
from tests.conftest import ROOT, SMOKE, SMOKE_BY_FAMILY

SMOKE_TRANSLATION = SMOKE_BY_FAMILY["translation"]


def test_default_params_load_into_frozen_sections():
    params = load_params(ROOT / "params.yaml")
    assert params.ingest.source == "mnist5k"
    assert params.section("validate").min_images > 0
    with pytest.raises(ValidationError, match="frozen"):
        params.train.kimg = 1


def test_smoke_profile_has_exactly_the_same_keys():
    full = yaml.safe_load((ROOT / "params.yaml").read_text())
    smoke = yaml.safe_load(SMOKE.read_text())
    assert list(full) == list(STAGES) == list(smoke)
    for section in STAGES:
        assert set(full[section]) == set(smoke[section]), section


def test_override_sets_typed_value():
    params = load_params(
        SMOKE, ["train.kimg=0.5", "train.seed=7", "ingest.source=digits", "train.reg.r1_gamma=2"]
    )
    assert params.train.kimg == 0.5 and params.train.seed == 7
    assert params.train.reg.r1_gamma == 2.0
    assert params.flat()["train.reg.r1_gamma"] == 2.0
    assert params.ingest.source == "digits"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.kmig=3", "unknown key 'kmig' in section 'train'"),
        ("training.kimg=3", "unknown section 'training'"),
        ("train.kimg", "expected section.key=value"),
        ("train.kimg=-1", "train.kimg"),
        ("train.batch_size=many", "train.batch_size"),
        ("ingest.test_fraction=1.5", "ingest.test_fraction"),
        ("evaluate.kid_subset_size=100000", "kid_subset_size"),
        ("register.model_name=bad name!", "register.model_name"),
        ("train.reg.r2_gamma=1", "unknown key 'r2_gamma' in 'train.reg'"),
        ("train.reg=1", "'train.reg' is a group"),
        ("train.reg.spectral_norm=d2", "train.reg.spectral_norm"),
        ("train.arch=sagan", "sagan puts spectral norm in G and D"),
        ("train.arch=biggan", "train.arch"),
        ("train.precision=fp8", "train.precision"),
        ("train.nodes=0", "train.nodes"),
        ("train.nodes=3", "train.nodes x train.devices (3 x 1 processes)"),
        ("train.rdzv_endpoint=node0", "train.rdzv_endpoint: expected HOST:PORT"),
        ("train.rdzv_endpoint=node0:99999", "train.rdzv_endpoint: expected HOST:PORT"),
        ("train.kimg={", "--set train.kimg: '{' is not a valid YAML value"),
        ("train.kimg=.inf", "train.kimg: Input should be a finite number"),
        ("train.lr_g=.nan", "train.lr_g: Input should be a finite number"),
        ("train.batch_size=true", "train.batch_size: expected a number, not a true/false switch"),
        ("train.lr_d=false", "train.lr_d: expected a number, not a true/false switch"),
        ("validate.max_blank_fraction=true", "validate.max_blank_fraction: expected a number"),
        ("train.reg.r1_every=yes", "train.reg.r1_every: expected a number"),
        ("ingest.channels=true", "ingest.channels: expected a number, not a true/false switch"),
        ("ingest.image_size=false", "ingest.image_size: expected a number"),
        ("train.channels_last=1", "train.channels_last: expected true or false, not a number"),
        ("train.compile=0", "train.compile: expected true or false, not a number"),
    ],
)
def test_bad_override_names_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_params(SMOKE, [override])


def test_unknown_and_missing_keys_in_file(tmp_path):
    data = yaml.safe_load(SMOKE.read_text())
    data["train"]["learning_rate"] = 0.1
    del data["evaluate"]["seed"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_params(bad)
    assert "train.learning_rate: unknown key" in str(err.value)
    assert "evaluate.seed: missing key" in str(err.value)
    assert str(bad) in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "x.yaml").write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML at line 1, column 17"):
        load_params(tmp_path / "x.yaml")
    with pytest.raises(ConfigError, match="a folder, not a params file"):
        load_params(tmp_path)
    (tmp_path / "binary.yaml").write_bytes(bytes(range(128, 256)))
    with pytest.raises(ConfigError, match="not a text"):
        load_params(tmp_path / "binary.yaml")


def test_class_names_given_as_numbers_are_folder_names():
    assert load_params(SMOKE, ["ingest.classes=[0, 1, 10]"]).ingest.classes == ["0", "1", "10"]


def test_a_section_given_twice_is_an_error_not_the_last_one(tmp_path):
    text = SMOKE.read_text()
    (tmp_path / "twice.yaml").write_text(text + "\ntrain:\n  kimg: 1\n")
    with pytest.raises(ConfigError, match="key 'train' given twice"):
        load_params(tmp_path / "twice.yaml")


def test_digest_changes_with_section_only():
    a = load_params(SMOKE)
    b = load_params(SMOKE, ["train.seed=3"])
    assert a.digest("ingest") == b.digest("ingest")
    assert a.digest("train") != b.digest("train")


@pytest.mark.parametrize("loss", ["hinge", "wgan"])
def test_label_smoothing_is_rejected_where_it_means_nothing(loss):
    with pytest.raises(ConfigError, match=f"label_smoothing .* train.loss {loss}"):
        load_params(SMOKE, [f"train.loss={loss}", "train.reg.label_smoothing=0.1"])
    for ok in ("ns", "lsgan"):
        load_params(SMOKE, [f"train.loss={ok}", "train.reg.label_smoothing=0.1"])


def test_config_names_match_the_registries():
    """The names params accept are exactly the registries' keys (config keeps torch out)."""
    from components.config import METRIC_NAMES, SMOOTHED_LOSSES
    from components.evaluate.metrics import METRICS
    from components.families.noise.augment import AUGMENTS
    from components.families.noise.options import DIFFAUGMENT_OPS
    from components.train.losses import LOSSES

    assert tuple(METRICS) == METRIC_NAMES
    assert tuple(AUGMENTS) == DIFFAUGMENT_OPS
    assert set(SMOOTHED_LOSSES) <= set(LOSSES)


def test_arch_and_image_size_are_checked_together():
    """train.arch and ingest.image_size live in two sections; loading checks that the one
    builds the other, in one line that names both keys and the sizes the arch builds."""
    with pytest.raises(ConfigError) as err:
        load_params(SMOKE, ["train.arch=resnet"])  # the smoke profile's 28 px
    assert str(err.value) == (
        f"{SMOKE}: train.arch resnet cannot build ingest.image_size 28: resnet builds 32, 64, "
        "128, 256 px (dcgan or sagan builds 28)"
    )
    for size in (32, 64, 128, 256):
        assert load_params(SMOKE, ["train.arch=resnet", f"ingest.image_size={size}"])
    with pytest.raises(ConfigError, match="train.arch sagan cannot build ingest.image_size 256"):
        load_params(
            SMOKE, ["train.arch=sagan", "train.reg.spectral_norm=both", "ingest.image_size=256"]
        )
    # the translation archs are not in ARCH_SIZES: their own nets check the size (nets.py)
    load_params(SMOKE_TRANSLATION, ["ingest.image_size=256"])


@pytest.mark.parametrize("spectral_norm", ["none", "g"])
def test_resnet_needs_spectral_norm_in_d(spectral_norm):
    with pytest.raises(ConfigError, match="train.arch resnet puts spectral norm in D"):
        load_params(
            SMOKE,
            [
                "train.arch=resnet",
                "ingest.image_size=32",
                f"train.reg.spectral_norm={spectral_norm}",
            ],
        )


ADA_ON = ["train.reg.ada=true", "train.reg.diffaugment="]  # the smoke profile has diffaugment


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["train.reg.ada=true"],  # with the smoke profile's diffaugment
            "train.reg.ada and train.reg.diffaugment ('translation,cutout') both augment what D"
            ' sees: choose one (train.reg.diffaugment: "" or train.reg.ada: false)',
        ),
        (
            [*ADA_ON, "train.loss=wgan"],
            "train.reg.ada needs a D with a fixed real/fake boundary (ns, hinge, lsgan); "
            "train.loss wgan's critic has none to measure overfitting against",
        ),
        (
            [*ADA_ON, "train.reg.gp_weight=10"],
            "train.reg.ada with train.reg.gp_weight (10.0): the gradient penalty is taken on "
            "un-augmented images D never sees; use train.reg.r1_gamma",
        ),
        ([*ADA_ON, "train.reg.ada_target=1.5"], "train.reg.ada_target"),
        ([*ADA_ON, "train.reg.ada_interval=0"], "train.reg.ada_interval"),
        ([*ADA_ON, "train.reg.ada_kimg=0"], "train.reg.ada_kimg"),
    ],
)
def test_ada_rejections_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_params(SMOKE, overrides)
    assert message in str(err.value) and ";" not in str(err.value).replace(message, "")


@pytest.mark.parametrize(
    "overrides",
    [
        ["train.arch=dcgan"],
        ["train.arch=sagan", "train.reg.spectral_norm=both"],
        ["train.arch=resnet", "ingest.image_size=32"],
    ],
)
def test_ada_loads_on_every_noise_arch(overrides):
    params = load_params(SMOKE, [*ADA_ON, *overrides])
    assert params.train.reg.ada and params.flat()["train.reg.ada_kimg"] == 100


@pytest.mark.parametrize(
    "profile", sorted(p.name for p in ROOT.glob("params*.yaml")), ids=lambda name: name
)
def test_every_shipped_profile_loads_with_every_key(profile):
    """The params files at the root are complete and valid (a missing or misspelt key fails):
    every section of params.yaml, train and register with exactly their family's keys."""
    from components import families

    params = load_params(ROOT / profile)
    shipped = yaml.safe_load((ROOT / profile).read_text())
    reference = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(shipped) == set(reference)
    family = families.for_arch(params.train.arch)
    from components.config import FAMILY_SECTIONS

    for section, keys in reference.items():
        own = getattr(family, f"{section}_config", None) if section in FAMILY_SECTIONS else None
        expected = set(own.model_fields) if own is not None else set(keys)
        assert set(shipped[section]) == expected, section
    assert params.ingest.source


def test_each_family_reads_only_its_own_keys():
    """A params file carries only its family's keys: the shipped files load, none holds a
    key its family does not read, and another family's key is one line naming it and the
    family it belongs to."""
    from components import families
    from components.config import flatten

    for name in (
        "params.yaml",
        "params-photos.yaml",
        "params-translate.yaml",
        "params-pix2pix.yaml",
    ):
        params = load_params(ROOT / name)
        family = families.for_arch(params.train.arch)
        assert type(params.train) is family.train_config
        assert type(params.register_) is family.register_config
    translation = load_params(ROOT / "params-translate.yaml").to_dict()
    assert not {"g_cond", "z_dim"} & set(translation["train"])
    assert set(translation["train"]["reg"]) == {"ema_half_life_kimg"}
    assert "max_fid_ratio" not in translation["register"]
    noise = flatten(load_params(ROOT / "params.yaml").to_dict())
    assert not [k for k in noise if k.startswith("train.translation.") or "gap_closed" in k]
    with pytest.raises(ConfigError) as err:
        load_params(SMOKE, ["train.arch=cyclegan"])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{SMOKE}: train.arch cyclegan is the translation family, but ")
    assert "belong to the noise (dcgan|sagan|resnet) family: start from params-translate.yaml" in (
        message
    )


def test_a_foreign_key_added_by_hand_is_named(tmp_path):
    """train.z_dim (the noise family's) in a translation file: one line naming the key."""
    text = (
        (ROOT / "params-translate.yaml").read_text().replace("  kimg:", "  z_dim: 64\n  kimg:", 1)
    )
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"train.z_dim belong to the noise"):
        load_params(tmp_path / "p.yaml")
    text = (
        (ROOT / "params-translate.yaml").read_text().replace("  kimg:", "  z_dimm: 64\n  kimg:", 1)
    )
    (tmp_path / "q.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"train.z_dimm: unknown key$"):
        load_params(tmp_path / "q.yaml")


def test_an_unknown_arch_names_the_choices():
    with pytest.raises(
        ConfigError, match=r"train.arch: 'stylegan' is not a model \(one of dcgan, "
    ):
        load_params(SMOKE, ["train.arch=stylegan"])


def test_text_encoder_folder_that_is_not_there_is_refused():
    """train.text.encoder: scratch or a local model folder; a missing one is one line naming
    the key, not a silent scratch (tests/model/test_text2image_pretrained.py: the rest)."""
    with pytest.raises(ConfigError, match=r"train.text.encoder: not 'scratch' and no such folder"):
        load_params(SMOKE_BY_FAMILY["text2image"], ["train.text.encoder=/models/clip"])
