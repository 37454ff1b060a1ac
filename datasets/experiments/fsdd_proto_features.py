#!/usr/bin/python3
"""Dumps FSDD log-mel spectrograms as cnnkit computes them (8 kHz, n_fft 512, hop 128, 64 slaney mels,
dB relative to the clip's peak, top 80 dB) into one .npz, for the torch prototype fsdd_proto.py.
NFFT=256 in the environment changes the FFT size (the window-length screen in datasets/README.md); PREEMPH=0.97
applies the pre-emphasis filter y[n] = x[n] - 0.97 x[n-1] first (+6 dB per octave: weak fricatives rise towards
the vowel's peak); FMIN=125 starts the mel bands at 125 Hz instead of 0 (no room hum or rumble, which
differ most between the speakers' recordings)."""
import glob, os, sys
import numpy as np, torch, torchaudio
from scipy.io import wavfile

root = sys.argv[1] if len(sys.argv) > 1 else '../shared/datasets/fsdd'
out = sys.argv[2] if len(sys.argv) > 2 else '/tmp/fsdd_mel.npz'
mel = torchaudio.transforms.MelSpectrogram(sample_rate=8000, n_fft=int(os.environ.get("NFFT", "512")), hop_length=128, n_mels=64, power=2.0,
                                           f_min=float(os.environ.get("FMIN", "0")),
                                           norm='slaney', mel_scale='slaney')
specs, labels, speakers, names = [], [], [], []
for path in sorted(glob.glob(os.path.join(root, '*', '*.wav'))):
    sr, x = wavfile.read(path)
    x = x.astype(np.float32) / (32768.0 if x.dtype == np.int16 else 1.0)
    if x.ndim > 1: x = x.mean(1)
    pe = float(os.environ.get("PREEMPH", "0"))
    if pe > 0: x = np.append(x[:1], x[1:] - pe * x[:-1]).astype(np.float32)
    assert sr == 8000
    s = mel(torch.from_numpy(x)).numpy()
    db = 10 * np.log10(np.maximum(s, 1e-10))
    db = np.maximum(db, db.max() - 80) - db.max()
    name = os.path.basename(path)
    specs.append(db.astype(np.float32)); labels.append(int(name.split('_')[0]))
    speakers.append(name.split('_')[1]); names.append(name)
np.savez(out, specs=np.concatenate(specs, axis=1), lengths=np.array([s.shape[1] for s in specs]), labels=np.array(labels), speakers=np.array(speakers),
         names=np.array(names))
print(len(specs), 'clips ->', out)
