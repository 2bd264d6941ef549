"""The image set's GX rules: size, unreadable files, shape, pixel range, blank and duplicate
images, classes and their shares."""

from __future__ import annotations

from components.config import ValidateConfig
from components.validate import Rule


def suite(cfg: ValidateConfig, manifest: dict) -> list[Rule]:
    """The expectations, from `validate:` thresholds and the manifest's declared shape/classes."""
    import great_expectations as gx

    E = gx.expectations
    channels, height, width = manifest["shape"]
    rules = [
        Rule(
            f"dataset size >= validate.min_images ({cfg.min_images})",
            E.ExpectTableRowCountToBeBetween(min_value=cfg.min_images),
        ),
        Rule(
            f"unreadable files <= validate.max_unreadable_fraction ({cfg.max_unreadable_fraction})",
            E.ExpectColumnValuesToBeInSet(
                column="readable", value_set=[True], mostly=1 - cfg.max_unreadable_fraction
            ),
        ),
        Rule(
            f"every image has {channels} channel(s)",
            E.ExpectColumnValuesToBeInSet(column="channels", value_set=[channels]),
        ),
        Rule(
            f"every image is {height} px high",
            E.ExpectColumnValuesToBeInSet(column="height", value_set=[height]),
        ),
        Rule(
            f"every image is {width} px wide",
            E.ExpectColumnValuesToBeInSet(column="width", value_set=[width]),
        ),
        Rule("pixel values >= 0", E.ExpectColumnValuesToBeBetween(column="pixel_min", min_value=0)),
        Rule(
            "pixel values <= 255",
            E.ExpectColumnValuesToBeBetween(column="pixel_max", max_value=255),
        ),
        Rule(
            "no NaN or inf pixels",
            E.ExpectColumnValuesToBeBetween(column="n_nonfinite", min_value=0, max_value=0),
        ),
        Rule(
            f"duplicate images <= validate.max_duplicate_fraction ({cfg.max_duplicate_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="duplicate_count", max_value=1, mostly=1 - cfg.max_duplicate_fraction
            ),
        ),
        Rule(
            f"blank images (pixel std < {cfg.min_pixel_std}) <= validate.max_blank_fraction "
            f"({cfg.max_blank_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="pixel_std", min_value=cfg.min_pixel_std, mostly=1 - cfg.max_blank_fraction
            ),
        ),
    ]
    if manifest["conditional"]:
        n_classes = len(manifest["class_names"])
        rules += [
            Rule(
                f"labels in 0..{n_classes - 1} ({', '.join(manifest['class_names'])})",
                E.ExpectColumnValuesToBeInSet(column="label", value_set=list(range(n_classes))),
            ),
            Rule(
                f"every class has images ({', '.join(manifest['class_names'])})",
                E.ExpectColumnDistinctValuesToContainSet(
                    column="label", value_set=list(range(n_classes))
                ),
            ),
            Rule(
                f"at least validate.min_classes ({cfg.min_classes}) classes",
                E.ExpectColumnUniqueValueCountToBeBetween(
                    column="label", min_value=cfg.min_classes
                ),
            ),
            Rule(
                f"each class >= validate.min_class_fraction ({cfg.min_class_fraction}) of the data",
                E.ExpectColumnValuesToBeBetween(
                    column="class_fraction", min_value=cfg.min_class_fraction
                ),
            ),
        ]
    return rules


# the validate hooks (components/datakinds/base.py)


def summarize(data):
    from components.validate import summarize as per_image

    return per_image(data.images, data.meta)
