"""Export the GE2E voice encoder (``resemblyzer`` 0.1.4 wheel) to ``src/ingestd/providers/data/ge2e.npz``.

    .venv/bin/python bench/tools/export_ge2e.py [--dtype float32|float16]

Run once, where torch, librosa and resemblyzer are installed (the dev extra). Writes, for the numpy runtime in
``ingestd.providers.speakers``: the three LSTM layers' input and recurrent weights (``w_ih{l}``, ``w_hh{l}``) with
their two biases summed (``b{l}``, as the LSTM adds them), the linear layer (``linear_w``, ``linear_b``) and the
mel filterbank the encoder was trained with (``mel_fb``: librosa's default Slaney filters for 16 kHz, n_fft 400,
40 bands, exactly what ``resemblyzer.audio.wav_to_mel_spectrogram`` applies). Prints the file's size.

float32 by default: float16 (2.6 MB) kept every window within cosine 0.999999 of the original but changed the
clustering of bench/diarization.py's borderline three-voice meeting (DER 64.0 -> 58.8 %, 33.8 -> 42.7 % given the
count); float32 reproduces the torch encoder's results there exactly.
"""

from __future__ import annotations

import argparse
import importlib.util
import os

import librosa
import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "ingestd", "providers", "data", "ge2e.npz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float16", "float32"])
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    spec = importlib.util.find_spec("resemblyzer")  # found, not imported (its __init__ needs webrtcvad)
    assert spec is not None and spec.submodule_search_locations
    weights = os.path.join(next(iter(spec.submodule_search_locations)), "pretrained.pt")
    state = torch.load(weights, map_location="cpu", weights_only=False)["model_state"]
    arrays = {}
    for layer in range(3):
        arrays[f"w_ih{layer}"] = state[f"lstm.weight_ih_l{layer}"].numpy()
        arrays[f"w_hh{layer}"] = state[f"lstm.weight_hh_l{layer}"].numpy()
        arrays[f"b{layer}"] = (state[f"lstm.bias_ih_l{layer}"] + state[f"lstm.bias_hh_l{layer}"]).numpy()
    arrays["linear_w"] = state["linear.weight"].numpy()
    arrays["linear_b"] = state["linear.bias"].numpy()
    arrays = {k: v.astype(args.dtype) for k, v in arrays.items()}
    arrays["mel_fb"] = librosa.filters.mel(sr=16_000, n_fft=400, n_mels=40).astype(np.float32)
    np.savez_compressed(args.out, **arrays)
    print(f"{os.path.normpath(args.out)}: {os.path.getsize(args.out) / 1e6:.2f} MB ({args.dtype})")


if __name__ == "__main__":
    main()
