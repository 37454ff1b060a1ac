#!/usr/bin/python3
"""Torch prototype of cnnkit's speech recipe on FSDD features from fsdd_proto_features.py, to compare
normalisations and augmentations on a held-out VALIDATION speaker quickly (--threads 1). The recipe that
became cnnkit's speech default (datasets/README.md):
  fsdd_proto.py --train lucas,nicolas,theo --val jackson --floor 40 --lifter 20 --warp 0.15 --stretch 0.15 \
      --trim 40 --center 1
The network copies cnnkit's `cnn` (4 conv3x3-BN-ReLU-maxpool blocks 32-64-128-128, GAP, dropout, dense),
Adam 1e-3 (weight decay 1e-4), cosine to 2%, batch 32, 1 s segments of 64 frames padded with the silence level."""
import argparse, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--npz', default='/tmp/fsdd_mel_a.npz')
ap.add_argument('--train', default='lucas,nicolas,theo')
ap.add_argument('--val', default='jackson')
ap.add_argument('--norm', default='global', choices=['global', 'cmn', 'cmvn', 'cmvn_clip'])
ap.add_argument('--warp', type=float, default=0.0, help='mel-axis warp factor range +-')
ap.add_argument('--stretch', type=float, default=0.0, help='time stretch range +-')
ap.add_argument('--epochs', type=int, default=15)
ap.add_argument('--width', type=float, default=1.0)
ap.add_argument('--dropout', type=float, default=0.3)
ap.add_argument('--mixup', type=float, default=0.0)
ap.add_argument('--trim', type=float, default=0.0, help='drop leading/trailing frames this many dB below the loudest frame (0 = off)')
ap.add_argument('--center', type=int, default=0, help='1: a clip shorter than the segment sits in its middle')
ap.add_argument('--lifter', type=int, default=0, help='keep this many cepstral (DCT over the mel bands) coefficients of each frame: a smoothed spectral envelope without the pitch harmonics (0 = off)')
ap.add_argument('--floor', type=float, default=0.0, help='raise every bin to at least -floor dB re the clip peak (0 = keep the 80 dB range)')
ap.add_argument('--tilt', type=int, default=0, help='per clip, remove the mean over frames of the first K cepstral coefficients (level, tilt, curvature of the channel) (0 = off)')
ap.add_argument('--eq', type=float, default=0.0, help='training: add a random smooth spectral tilt/curve of up to +-EQ dB at the band edges to the bins above the floor (a different microphone/room)')
ap.add_argument('--fmask', type=float, default=1/8, help='training: the widest of the frequency masks, as a fraction of the bands')
ap.add_argument('--nfmask', type=int, default=2, help='training: how many frequency masks')
ap.add_argument('--seed', type=int, default=42)
ap.add_argument('--threads', type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
rng = np.random.default_rng(a.seed)
d = np.load(a.npz)
offs = np.concatenate([[0], np.cumsum(d['lengths'])])
allspec = d['specs']
specs = [allspec[:, offs[i]:offs[i + 1]] for i in range(len(d['lengths']))]
labels, speakers = d['labels'], d['speakers']
T = 64

def normalise(s):
    if a.norm == 'cmn':
        return s - s.mean(1, keepdims=True)
    if a.norm == 'cmvn':
        return (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-3)
    if a.norm == 'cmvn_clip':   # per-band mean, one std for the clip
        s = s - s.mean(1, keepdims=True)
        return s / (s.std() + 1e-3)
    return s

def trim(s):
    if a.trim <= 0: return s
    e = s.max(0)   # a frame's loudest band (dB re the clip's peak, so the loudest frame is at 0)
    keep = np.nonzero(e >= e.max() - a.trim)[0]
    return s[:, keep[0]:keep[-1] + 1]

def lifter(s):
    if a.lifter <= 0: return s
    import scipy.fft
    c = scipy.fft.dct(s, type=2, norm='ortho', axis=0)
    c[a.lifter:] = 0
    return scipy.fft.idct(c, type=2, norm='ortho', axis=0).astype(np.float32)

def floor(s):
    return np.maximum(s, -a.floor) if a.floor > 0 else s

def tilt(s):
    if a.tilt <= 0: return s
    import scipy.fft
    c = scipy.fft.dct(s, type=2, norm='ortho', axis=0)
    c[:a.tilt] -= c[:a.tilt].mean(axis=1, keepdims=True)
    return scipy.fft.idct(c, type=2, norm='ortho', axis=0).astype(np.float32)

specs = [normalise(tilt(lifter(floor(trim(s))))) for s in specs]
if a.norm == 'global':
    tr = np.concatenate([specs[i] for i in range(len(specs)) if speakers[i] in a.train.split(',')], axis=1)
    mu, sd = tr.mean(), tr.std()
    specs = [(s - mu) / sd for s in specs]
else:
    sd = 1.0

def segments(i, hop):
    s = specs[i]
    n = s.shape[1]
    fill = s.min()
    out = []
    starts = [0] if n <= T else list(range(0, n - T + hop, hop))
    for st in starts:
        seg = np.full((64, T), fill, np.float32)
        part = s[:, st:st + T]
        off = (T - n) // 2 if a.center and n < T else 0
        seg[:, off:off + part.shape[1]] = part
        out.append(seg)
        if st + T >= n: break
    return out

def warp_rows(x, f):   # x: (F, T); output row r reads input row r / f (linear interpolation)
    F_ = x.shape[0]
    src = np.clip(np.arange(F_) / f, 0, F_ - 1)
    lo = np.floor(src).astype(int); hi = np.minimum(lo + 1, F_ - 1); w = (src - lo)[:, None]
    return x[lo] * (1 - w) + x[hi] * w

def augment(x):
    fill = x.min()
    if a.eq > 0:
        u = np.linspace(-1, 1, x.shape[0])[:, None]
        curve = (rng.uniform(-1, 1) * u + rng.uniform(-1, 1) * (2 * u * u - 1)) * (a.eq / 2) / sd
        x = np.where(x > fill + 1e-6, np.maximum(x + curve.astype(np.float32), fill), x)
    if a.warp > 0:
        x = warp_rows(x, 1 + rng.uniform(-a.warp, a.warp))
    if a.stretch > 0:
        x = warp_rows(x.T, 1 + rng.uniform(-a.stretch, a.stretch)).T.copy()
    sh = rng.integers(-T // 8, T // 8 + 1)
    if sh:
        y = np.full_like(x, fill)
        if sh > 0: y[:, sh:] = x[:, :-sh]
        else: y[:, :sh] = x[:, -sh:]
        x = y
    x = x.copy()
    for _ in range(2):
        w = rng.integers(0, T // 10 + 1); st = rng.integers(0, T); x[:, st:st + w] = fill
    for _ in range(a.nfmask):
        h = rng.integers(0, int(64 * a.fmask) + 1); st = rng.integers(0, 64); x[st:st + h, :] = fill
    return x

def block(ci, co):
    return [nn.Conv2d(ci, co, 3, padding=1), nn.BatchNorm2d(co), nn.ReLU(), nn.MaxPool2d(2)]
ch = [int(c * a.width) for c in (32, 64, 128, 128)]
net = nn.Sequential(*block(1, ch[0]), *block(ch[0], ch[1]), *block(ch[1], ch[2]), *block(ch[2], ch[3]),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(a.dropout), nn.Linear(ch[3], 10))
train_idx = [i for i in range(len(specs)) if speakers[i] in a.train.split(',')]
val_idx = [i for i in range(len(specs)) if speakers[i] in a.val.split(',')]
Xtr, ytr = [], []
for i in train_idx:
    for s in segments(i, 16):
        Xtr.append(s); ytr.append(labels[i])
ytr = np.array(ytr)
opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
steps = a.epochs * ((len(Xtr) + 31) // 32)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=2e-5)

def evaluate(idx):
    net.eval(); correct = 0
    with torch.no_grad():
        for i in idx:
            segs = torch.from_numpy(np.stack(segments(i, 32)))[:, None]
            p = F.softmax(net(segs), 1).mean(0)
            correct += int(p.argmax()) == labels[i]
    return correct / len(idx)

t0 = time.time()
best = 0
hist = []
for ep in range(a.epochs):
    net.train(); perm = rng.permutation(len(Xtr)); tl = 0; tc = 0
    for b in range(0, len(perm), 32):
        bi = perm[b:b + 32]
        x = torch.from_numpy(np.stack([augment(Xtr[i]) for i in bi]))[:, None].float()
        y = torch.from_numpy(ytr[bi])
        if a.mixup > 0:
            lam = float(rng.beta(a.mixup, a.mixup)); pi = torch.randperm(len(bi))
            x = lam * x + (1 - lam) * x[pi]
            out = net(x); loss = lam * F.cross_entropy(out, y) + (1 - lam) * F.cross_entropy(out, y[pi])
        else:
            out = net(x); loss = F.cross_entropy(out, y)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        tl += float(loss) * len(bi); tc += int((out.argmax(1) == y).sum())
    va = evaluate(val_idx)
    hist.append(va)
    print(f'epoch {ep+1} loss {tl/len(perm):.3f} train_acc {tc/len(perm):.3f} val_acc {va:.3f} {time.time()-t0:.0f}s',
          flush=True)
print(f'FINAL {vars(a)} val_acc {va:.4f} last5 {np.mean(hist[-5:]):.4f}')
