"""Rolls out of the pipeline: MIDI bytes (and back), piano-roll pictures (one colour per
track), and a WAV preview from a small pure-numpy synthesiser.

The WAV is rendered here, offline, with additive synthesis (a fundamental, two harmonics, an
attack and an exponential decay per note): FluidSynth is not installed on the machines this
runs on, and pretty_midi's own `fluidsynth()` needs it. The preview is for listening to the
notes, not for timbre.
"""

from __future__ import annotations

import io
import wave

import numpy as np

# one colour per track (RGB), soprano first: red, blue, green, orange, then more
PALETTE = np.array(
    [
        (220, 50, 47), (38, 110, 210), (40, 160, 70), (230, 140, 20),
        (150, 70, 190), (20, 170, 170), (200, 60, 140), (110, 110, 110),
    ],
    dtype=np.float64,
)  # fmt: skip
SAMPLE_RATE = 22050
DEFAULT_TEMPO = 100.0  # quarter notes per minute when a source declares none


def notes_of(roll: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(track, onset step, end step, pitch row) of every run of 1s of a (tracks, T, P) roll."""
    tracks, steps, pitches = roll.shape
    on = np.zeros((tracks, steps + 2, pitches), dtype=np.int8)
    on[:, 1:-1] = roll > 0
    edges = np.diff(on, axis=1)  # (tracks, T + 1, P): +1 onset, -1 offset
    out = []
    for t, s, p in zip(*np.nonzero(edges == 1), strict=True):
        e = s + int(np.argmax(edges[t, s + 1 :, p] == -1)) + 1
        out.append((int(t), int(s), int(e), int(p)))
    return sorted(out, key=lambda n: (n[1], n[0], n[3]))


def roll_to_midi(roll: np.ndarray, steps_per_beat: int, pitch_low: int,
                 tempo: float = DEFAULT_TEMPO, program: int = 0) -> bytes:  # fmt: skip
    """A (tracks, T, P) binary roll as a type-1 MIDI file: one instrument per track (named
    `track-<i>`, also empty ones), note velocity 80."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempo), resolution=480)
    step = 60.0 / float(tempo) / steps_per_beat  # seconds per grid step
    insts = [
        pretty_midi.Instrument(program=program, name=f"track-{i}") for i in range(roll.shape[0])
    ]
    for t, s, e, p in notes_of(roll):
        insts[t].notes.append(pretty_midi.Note(80, pitch_low + p, s * step, e * step))
    pm.instruments.extend(insts)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def midi_to_roll(data: bytes, tracks: int, steps: int, steps_per_beat: int,
                 pitch_low: int, pitch_high: int) -> np.ndarray:  # fmt: skip
    """A MIDI file written by roll_to_midi read back into a (tracks, steps, P) roll (notes on
    the grid; track i from the instrument named track-<i>, else the i-th instrument)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    roll = np.zeros((tracks, steps, pitch_high - pitch_low), np.uint8)
    for i, inst in enumerate(pm.instruments):
        name = inst.name or ""
        t = int(name.split("-", 1)[1]) if name.startswith("track-") else i
        for note in inst.notes:
            s = round(pm.time_to_tick(note.start) / pm.resolution * steps_per_beat)
            e = round(pm.time_to_tick(note.end) / pm.resolution * steps_per_beat)
            if t < tracks and pitch_low <= note.pitch < pitch_high:
                roll[t, s : min(e, steps), note.pitch - pitch_low] = 1
    return roll


def render_rolls(rolls: np.ndarray, steps_per_bar: int, cols: int = 4, scale: int = 3,
                 gap: int = 6) -> np.ndarray:  # fmt: skip
    """uint8 RGB (H, W, 3): windows (n, tracks, T, P) in a grid, pitch upwards, time to the
    right, one colour per track (blended where tracks share a cell), bar lines grey."""
    n, tracks, steps, pitches = rolls.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    h, w = pitches * scale, steps * scale
    sheet = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), 255, np.uint8)
    colours = PALETTE[np.arange(tracks) % len(PALETTE)]  # (tracks, 3)
    for k in range(n):
        on = rolls[k] > 0  # (tracks, T, P)
        count = on.sum(axis=0)  # (T, P)
        mix = np.einsum("ktp,kc->tpc", on.astype(np.float64), colours)
        cell = np.where(count[..., None] > 0, mix / np.maximum(count, 1)[..., None], 255.0)
        for b in range(0, steps, steps_per_bar):
            cell[b, count[b] == 0] = 215.0  # a light bar line where nothing sounds
        img = cell.transpose(1, 0, 2)[::-1]  # (P, T, 3), high pitches on top
        img = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1).astype(np.uint8)
        r, c = divmod(k, cols)
        top, left = gap + r * (h + gap), gap + c * (w + gap)
        sheet[top : top + h, left : left + w] = img
    return sheet


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def synthesize(roll: np.ndarray, steps_per_beat: int, pitch_low: int,
               tempo: float = DEFAULT_TEMPO, rate: int = SAMPLE_RATE) -> np.ndarray:  # fmt: skip
    """float32 mono audio in [-1, 1] of a (tracks, T, P) roll (see the module docstring)."""
    step = 60.0 / float(tempo) / steps_per_beat
    total = int(roll.shape[1] * step * rate) + rate // 2
    audio = np.zeros(total, np.float64)
    for _t, s, e, p in notes_of(roll):
        freq = 440.0 * 2 ** ((pitch_low + p - 69) / 12)
        n = int((e - s) * step * rate) + rate // 20  # a short release past the note's end
        t = np.arange(n) / rate
        tone = sum(a * np.sin(2 * np.pi * freq * k * t) for k, a in ((1, 1.0), (2, 0.4), (3, 0.2)))
        env = np.minimum(t / 0.01, 1.0) * np.exp(-2.5 * t)
        release = rate // 20
        env[-release:] *= np.linspace(1, 0, release)
        a = int(s * step * rate)
        m = min(n, total - a)
        audio[a : a + m] += (tone * env)[:m]
    peak = np.abs(audio).max()
    return (audio / peak * 0.9 if peak > 0 else audio).astype(np.float32)


def wav_bytes(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV of float audio in [-1, 1] (stdlib wave)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()
