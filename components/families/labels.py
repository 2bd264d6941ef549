"""Class labels as a served generator is asked for them: shared by the families whose
pyfunc takes a `label` column (noise, music). numpy only: it ships with the models."""

from __future__ import annotations

import numpy as np


def resolve_labels(values, class_names: list[str]) -> np.ndarray:
    """Integer labels from integers or class names ("7", "cat"): a string is looked up among
    the class names recorded at ingest first, then read as an index if it is all digits."""
    index = {name: i for i, name in enumerate(class_names)}
    out = []
    for value in values:
        if isinstance(value, str):
            if value in index:
                out.append(index[value])
            elif value.strip().lstrip("-").isdigit():
                out.append(int(value))
            else:
                raise ValueError(
                    f"label {value!r} is not a class of this generator "
                    f"(one of {', '.join(class_names)})"
                )
        else:
            out.append(int(value))
    labels = np.asarray(out, dtype=np.int64)
    bad = (labels < 0) | (labels >= len(class_names))
    if bad.any():
        raise ValueError(
            f"label out of range 0..{len(class_names) - 1}: {labels[bad][:5].tolist()}"
        )
    return labels
