#!/usr/bin/python3
"""Writes tests/fixtures/features/*.npy: reference spectrograms for test_spectrogram.

The references are a float64 numpy port of librosa 0.10 (stft, filters.mel, melspectrogram, power_to_db:
librosa itself is not packaged in Debian 12) cross-checked against torchaudio, and a numpy port of
YAMNet's TensorFlow front end (tf.signal.stft + linear_to_mel_weight_matrix + log(mel + 0.001)).
Inputs are read with scipy (16-bit PCM / 32768, exactly what libsndfile gives), so the C test can decode
the same files itself and compare spectrograms of identical samples. Run: /usr/bin/python3 tests/ref/gen_features.py
"""
import os
import sys

import numpy as np
import scipy.io.wavfile
import torch
import torchaudio

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "features")
SHARED = os.environ.get("CNK_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))


def read_wav(rel, seconds=None):
    sr, y = scipy.io.wavfile.read(os.path.join(SHARED, rel))
    assert y.dtype == np.int16 and y.ndim == 1, rel
    y = y.astype(np.float64) / 32768.0
    if seconds is not None:
        y = y[: int(round(seconds * sr))]
    return sr, y


def hann_periodic(n):
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


# ---- librosa 0.10, float64 -------------------------------------------------------------------------
def hz_to_mel(f, htk):
    f = np.asanyarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mels = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mels)


def mel_to_hz(m, htk):
    m = np.asanyarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    w = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        w[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    if norm == "slaney":
        w *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w.astype(np.float32).astype(np.float64)  # librosa's filterbank is float32


def stft_power(y, n_fft, hop, power=2.0):
    yp = np.pad(y, n_fft // 2, mode="constant")
    n_frames = 1 + (len(yp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(yp[idx] * hann_periodic(n_fft), axis=1).T  # (bins, frames)
    return np.abs(spec) ** power


def power_to_db(s, ref=1.0, amin=1e-10, top_db=80.0):
    log_spec = 10.0 * np.log10(np.maximum(amin, s)) - 10.0 * np.log10(max(amin, ref))
    return np.maximum(log_spec, log_spec.max() - top_db)


def mel_db(y, sr, n_fft=2048, hop=512, n_mels=128, fmin=0.0, fmax=None):
    fmax = sr / 2 if fmax is None else fmax
    mel = mel_filters(sr, n_fft, n_mels, fmin, fmax, False, "slaney") @ stft_power(y, n_fft, hop)
    # Cross-check the port against torchaudio (float64, same parameters).
    ta = torchaudio.transforms.MelSpectrogram(sample_rate=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels, f_min=fmin,
                                              f_max=fmax, center=True, pad_mode="constant", power=2.0,
                                              norm="slaney", mel_scale="slaney").double()
    ta_mel = ta(torch.from_numpy(y)).numpy()
    ref_db, ta_db = power_to_db(mel), power_to_db(ta_mel)
    above = ref_db > ref_db.max() - 80
    diff = np.abs(ref_db - ta_db)[above].max()
    assert diff < 2e-3, f"numpy librosa port and torchaudio disagree by {diff} dB"
    return ref_db, diff


# ---- YAMNet / TensorFlow front end -----------------------------------------------------------------
def tf_mel_matrix(n_mels, n_bins, sr, lo_hz, hi_hz):
    def to_mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)
    freqs = np.linspace(0.0, sr / 2.0, n_bins)[1:]
    bins_mel = to_mel(freqs)[:, None]
    edges = np.linspace(to_mel(lo_hz), to_mel(hi_hz), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    w = np.maximum(0.0, np.minimum((bins_mel - lower) / (center - lower), (upper - bins_mel) / (upper - center)))
    return np.pad(w, [[1, 0], [0, 0]])  # (n_bins, n_mels), DC bin zeroed


def yamnet_log_mel(y, sr=16000):
    win, hop, n_fft = 400, 160, 512
    n_frames = 1 + (len(y) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]
    mag = np.abs(np.fft.rfft(y[idx] * hann_periodic(win), n=n_fft, axis=1))
    mel = mag @ tf_mel_matrix(64, n_fft // 2 + 1, sr, 125.0, 7500.0)
    return np.log(mel + 0.001).T  # (64, frames)


def cat_bmp_resized(size):
    """cat.bmp (512 x 341, BMP), centre square crop, bilinear resize with antialiasing (PIL/torch's triangle
    filter scaled to the shrink factor, the same filter as stb_image_resize's STBIR_FILTER_TRIANGLE), CHW in
    pixel units. The BMP is parsed here with numpy (24-bit, bottom-up) to stay independent of stb."""
    with open(os.path.join(SHARED, "weights/imagenet-test-photos/cat.bmp"), "rb") as f:
        data = f.read()
    offset, width, height = (int.from_bytes(data[a:a + 4], "little", signed=True) for a in (10, 18, 22))
    bpp = int.from_bytes(data[28:30], "little")
    assert bpp == 24 and height > 0
    stride = (width * 3 + 3) // 4 * 4
    rows = np.frombuffer(data, np.uint8, count=stride * height, offset=offset).reshape(height, stride)
    rgb = rows[::-1, :width * 3].reshape(height, width, 3)[:, :, ::-1]  # bottom-up BGR -> top-down RGB
    side = min(width, height)
    x0, y0 = (width - side) // 2, (height - side) // 2
    crop = torch.from_numpy(np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side])).permute(2, 0, 1).double()
    out = torch.nn.functional.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False,
                                          antialias=True)
    return out[0].numpy(), rgb


def save(name, arr):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(arr, dtype=np.float32))
    print(f"{name}: shape {arr.shape}")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    for genre in ("blues", "classical", "metal"):
        sr, y = read_wav(f"datasets/gtzan-mini/wav/{genre}/{genre}.00000.wav", seconds=3.0)
        db, diff = mel_db(y, sr)
        print(f"{genre}: numpy vs torchaudio max {diff:.2e} dB")
        save(f"mel_db_{genre}_3s.npy", db)
    sr, y = read_wav("datasets/fsdd/3/3_jackson_0.wav")
    db, diff = mel_db(y, sr, n_fft=512, hop=128, n_mels=40)
    save("mel_db_fsdd_3_jackson_0.npy", db)
    sr, y = read_wav("datasets/gtzan-mini/wav/jazz/jazz.00000.wav", seconds=1.0)
    save("stft_db_jazz_1s.npy", power_to_db(stft_power(y, 2048, 512)))
    sr, y = read_wav("weights/yamnet/RECORDING.wav")
    assert sr == 16000
    save("yamnet_logmel_recording.npy", yamnet_log_mel(y))
    resized, rgb = cat_bmp_resized(64)
    save("image_cat_crop_64_rgb.npy", resized)
    # A few raw pixels (row, col, R, G, B) to check the BMP decode itself.
    save("image_cat_pixels.npy", np.array([[r, c, *rgb[r, c]] for r, c in ((0, 0), (100, 200), (340, 511))]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
