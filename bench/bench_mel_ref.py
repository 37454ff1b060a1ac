#!/usr/bin/python3
"""Reference timings for bench_mel: the same mel spectrogram (librosa 0.10 defaults: n_fft 2048, hop 512,
128 slaney mels with slaney norm, centred, power 2, then power_to_db with top_db 80) of the same 30 s
clips at 22050 Hz, with torchaudio and with numpy, one thread each.
Usage: bench_mel_ref.py [DIR_WITH_WAVS] [--repeat N]. Prints `name clips_per_s=X ms_per_clip=Y` lines,
timed in process CPU time as bench_mel.c does."""
import glob
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.io.wavfile  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402

SR, N_FFT, HOP, N_MELS = 22050, 2048, 512, 128


def load_clips(folder):
    clips = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.wav"), recursive=True)):
        sr, y = scipy.io.wavfile.read(path)
        if sr != SR or y.dtype != np.int16:
            continue
        if y.ndim > 1:
            y = y.mean(axis=1)
        clips.append((y[: 30 * SR] / 32768.0).astype(np.float32))
    return clips


def numpy_mel_db(y, window, fbank):
    yp = np.pad(y, N_FFT // 2)
    n_frames = 1 + (len(yp) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(yp, (n_frames, N_FFT), (yp.strides[0] * HOP, yp.strides[0]))
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = (power.astype(np.float32) @ fbank.T).T
    db = 10.0 * np.log10(np.maximum(1e-10, mel))
    return np.maximum(db, db.max() - 80.0)


def timed(fn, clips, repeat):
    fn(clips[0])  # warm-up (allocators, plans)
    start = time.process_time()
    for _ in range(repeat):
        for y in clips:
            fn(y)
    return time.process_time() - start


def main():
    folder, repeat = "../shared/datasets/gtzan-mini/wav", 3
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--repeat":
            repeat = int(args.pop(0))
        else:
            folder = a
    torch.set_num_threads(1)
    clips = load_clips(folder)
    if not clips:
        print(f"bench_mel_ref: no 22050 Hz 16-bit WAV clips under {folder}", file=sys.stderr)
        return 3
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                                               center=True, pad_mode="constant", power=2.0, norm="slaney",
                                               mel_scale="slaney")
    to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80.0)

    def torchaudio_mel_db(y):
        with torch.inference_mode():
            return to_db(mel(torch.from_numpy(y)))

    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    fbank = mel.mel_scale.fb.numpy().T.copy()  # (n_mels, n_bins), the same filters
    runs = repeat * len(clips)
    print(f"clips={len(clips)} seconds_per_clip=30 sr={SR} threads=1 torch={torch.__version__} numpy={np.__version__}")
    for name, fn in (("torchaudio_mel", torchaudio_mel_db), ("numpy_mel", lambda y: numpy_mel_db(y, window, fbank))):
        elapsed = timed(fn, clips, repeat)
        print(f"{name} clips_per_s={runs / elapsed:.2f} ms_per_clip={1000 * elapsed / runs:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
