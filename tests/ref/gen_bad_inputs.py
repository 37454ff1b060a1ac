#!/usr/bin/python3
"""gen_bad_inputs.py: the bad-input corpus of issue #7 and the fuzzers' seed corpora.

Writes tests/fixtures/bad_inputs/<kind>/* (small broken and valid files) with MANIFEST.tsv (one line per file:
kind, path, the exit codes `cnnkit` may give, a word the error line must hold), and fuzz/corpus/<target>/*
(valid seeds plus some of the broken files). Deterministic: run it again and git sees no change.
Run with Debian's python: /usr/bin/python3 tests/ref/gen_bad_inputs.py
Things git cannot store (a directory named .wav, an unreadable file) are made by tests/test_bad_inputs.sh.
"""
import ctypes
import gzip
import io
import math
import os
import shutil
import struct
import sys
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "bad_inputs")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MANIFEST = []


def put(kind, name, data, expect, word="", seed_for=None):
    """Writes OUT/kind/name; expect = allowed exit codes ("3", "0|3"); word = what the error line must say."""
    path = os.path.join(OUT, kind, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    MANIFEST.append((kind, f"{kind}/{name}", expect, word))
    if seed_for:
        seed(seed_for, name, data)
    return data


def seed(target, name, data):
    path = os.path.join(CORPUS, target, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---- audio -------------------------------------------------------------------------------------------------

def tone(n, sr, freq=440.0, amp=0.5):
    t = np.arange(n) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def sndfile_bytes(samples, sr, fmt_major, fmt_sub, ext):
    """Encodes with the system's libsndfile (the library cnnkit decodes with), through a scratch file."""
    lib = ctypes.CDLL("libsndfile.so.1")

    class SF_INFO(ctypes.Structure):
        _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int), ("channels", ctypes.c_int),
                    ("format", ctypes.c_int), ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]

    lib.sf_open.restype = ctypes.c_void_p
    lib.sf_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(SF_INFO)]
    lib.sf_writef_float.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.sf_close.argtypes = [ctypes.c_void_p]
    tmp = os.path.join(OUT, f".tmp-encode.{ext}")
    info = SF_INFO(0, sr, 1, fmt_major | fmt_sub, 0, 0)
    handle = lib.sf_open(tmp.encode(), 0x20, ctypes.byref(info))  # SFM_WRITE
    if not handle:
        sys.exit(f"libsndfile cannot write {ext}")
    data = np.ascontiguousarray(samples, dtype=np.float32)
    lib.sf_writef_float(handle, data.ctypes.data, len(data))
    lib.sf_close(handle)
    with open(tmp, "rb") as f:
        out = f.read()
    os.remove(tmp)
    return out


def wav_bytes(payload, channels=1, sr=8000, bits=16, fmt_tag=1, data_size=None, riff_size=None):
    """A canonical RIFF/WAVE file whose header fields can lie."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, sr, (sr * block) & 0xFFFFFFFF, block & 0xFFFF, bits)
    ds = len(payload) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", ds) + payload
    rs = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", rs) + body


def au_bytes(payload, channels=1, sr=8000, encoding=3, data_size=None):
    """Sun .au: big-endian header; encoding 3 = 16-bit linear PCM."""
    ds = len(payload) if data_size is None else data_size
    return b".snd" + struct.pack(">IIIII", 24, ds, encoding, sr, channels) + payload


def gen_audio():
    sr = 8000
    pcm = (tone(2000, sr) * 32767).astype("<i2").tobytes()
    good_wav = put("audio", "good_tone.wav", wav_bytes(pcm), "0", seed_for="audio")
    put("audio", "good_tone.au", au_bytes((tone(2000, sr) * 32767).astype(">i2").tobytes()), "0", seed_for="audio")
    flac = sndfile_bytes(tone(4000, sr), sr, 0x170000, 0x0002, "flac")  # SF_FORMAT_FLAC | PCM_16
    put("audio", "good_tone.flac", flac, "0", seed_for="audio")
    aiff = sndfile_bytes(tone(500, sr), sr, 0x020000, 0x0002, "aiff")
    seed("audio", "tone.aiff", aiff)
    stereo = np.stack([tone(300, 11025), tone(300, 11025, 880)], axis=1)
    seed("audio", "stereo_float.wav", wav_bytes(stereo.astype("<f4").tobytes(), channels=2, sr=11025, bits=32,
                                                fmt_tag=3))
    seed("audio", "u8.wav", wav_bytes(bytes(range(0, 256, 2)), bits=8))

    put("audio", "truncated.wav", good_wav[: 44 + len(pcm) // 2], "3", "truncated", seed_for="audio")
    put("audio", "truncated.au", au_bytes(pcm[: len(pcm) // 3], data_size=len(pcm)), "3", "truncated",
        seed_for="audio")
    put("audio", "truncated.flac", flac[: len(flac) // 2], "3", "", seed_for="audio")
    put("audio", "header_only.wav", good_wav[:44], "3", "")
    put("audio", "lying_riff_size.wav", wav_bytes(pcm, riff_size=0x7FFFFFF0, data_size=0x7FFFFF00), "3", "",
        seed_for="audio")
    # A data chunk that claims less than it holds: libsndfile decodes what the header declares.
    put("audio", "short_data_size.wav", wav_bytes(pcm, data_size=200), "0|3")
    put("audio", "zero_frames.wav", wav_bytes(b""), "3", "", seed_for="audio")
    put("audio", "zero_channels.wav", wav_bytes(pcm, channels=0), "3", "")
    put("audio", "channels_1000.wav", wav_bytes(pcm[:4000], channels=1000), "3", "", seed_for="audio")
    put("audio", "rate_0.wav", wav_bytes(pcm, sr=0), "3", "")
    put("audio", "rate_absurd.wav", wav_bytes(pcm, sr=0xFFFFFFFF), "3", "")
    put("audio", "rate_absurd.au", au_bytes(pcm, sr=2_000_000_000), "3", "")
    # 1 Hz: resampling 50000 frames to 22050 Hz would need 1.1 G samples, refused; the error must name the file.
    put("audio", "rate_1hz.wav", wav_bytes(bytes(128 + i % 50 for i in range(50000)), sr=1, bits=8), "3", "")
    put("audio", "channels_1000.au", au_bytes(pcm, channels=1000), "3", "")
    bad = tone(200, sr)
    bad[50], bad[120], bad[121] = np.nan, np.inf, -np.inf
    put("audio", "nan_inf_float.wav", wav_bytes(bad.astype("<f4").tobytes(), bits=32, fmt_tag=3), "3", "",
        seed_for="audio")
    put("audio", "text.wav", b"this is a text file, not a RIFF/WAVE file\n", "3", "")
    put("audio", "empty.wav", b"", "3", "")
    put("audio", "wav_named.flac", good_wav, "0")  # content decides, not the extension


# ---- images ------------------------------------------------------------------------------------------------

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width, height, colour=2):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def bmp_header_only(width, height):
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 12, 0, 0, 54) + info + b"\x00" * 12


def image_bytes(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gen_images():
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "RGB")
    jpg = put("image", "good.jpg", image_bytes(rgb, "JPEG", quality=80), "0", seed_for="image")
    png = put("image", "good.png", image_bytes(rgb, "PNG"), "0", seed_for="image")
    put("image", "grey.png", image_bytes(rgb.convert("L"), "PNG"), "0", seed_for="image")
    put("image", "rgba.png", image_bytes(rgb.convert("RGBA"), "PNG"), "0", seed_for="image")
    grey16 = Image.fromarray((rng.integers(0, 65536, (9, 11))).astype(np.uint16))
    put("image", "grey16.png", image_bytes(grey16, "PNG"), "0", seed_for="image")
    put("image", "one_pixel.png", image_bytes(Image.new("RGB", (1, 1), (200, 10, 30)), "PNG"), "0",
        seed_for="image")
    put("image", "png_named.jpg", png, "0")
    # Binary PGM/PPM, where Debian's stb_image 2.27 needs help: 16-bit ones converted to another channel count are
    # over-read, and cut-short pixel data is left uninitialised.
    grey16_px = rng.integers(0, 65536, (4, 5)).astype(">u2")
    put("image", "grey16.pgm", b"P5\n5 4\n65535\n" + grey16_px.tobytes(), "0", seed_for="image")
    rgb16_px = rng.integers(0, 1024, (4, 5, 3)).astype(">u2")
    put("image", "rgb16.ppm", b"P6\n# 10-bit values\n5 4\n1023\n" + rgb16_px.tobytes(), "0", seed_for="image")
    ppm = b"P6\n8 8\n255\n" + bytes(rng.integers(0, 256, 8 * 8 * 3, dtype=np.uint8))
    put("image", "truncated.ppm", ppm[: len(ppm) - 40], "3", "truncated", seed_for="image")
    seed("image", "small.bmp", image_bytes(rgb.resize((5, 3)), "BMP"))
    seed("image", "small.gif", image_bytes(rgb.resize((6, 4)).convert("P"), "GIF"))
    seed("image", "small.ppm", image_bytes(rgb.resize((4, 4)), "PPM"))
    seed("image", "small.tga", image_bytes(rgb.resize((4, 3)), "TGA"))
    put("image", "truncated.png", png[: len(png) // 2], "3", "", seed_for="image")
    # stb_image decodes a cut JPEG as far as it goes (the rest grey), so both outcomes are fine.
    put("image", "truncated.jpg", jpg[: len(jpg) // 2], "0|3", seed_for="image")
    put("image", "header_only.jpg", jpg[:20], "3", "")
    # stb_image itself refuses this one ("too large"); the next one is within stb's limits and hits cnnkit's budget.
    put("image", "huge_100000x100000.png", png_header_only(100000, 100000), "3", "", seed_for="image")
    put("image", "huge_12000x12000_grey.png", png_header_only(12000, 12000, colour=0), "3", "pixels",
        seed_for="image")
    put("image", "huge_100000x100000.bmp", bmp_header_only(100000, 100000), "3", "", seed_for="image")
    put("image", "zero_width.png", png_header_only(0, 10), "3", "")
    put("image", "text.png", b"not an image at all\n", "3", "")
    put("image", "empty.jpg", b"", "3", "")


# ---- CSV (a table of features with a label column, read by `cnnkit train`) ---------------------------------

def gen_csv():
    good = "f1,f2,f3,label\n" + "".join(
        f"{0.1 * i:.2f},{1 - 0.05 * i:.2f},{i % 3},{'ab'[i % 2]}\n" for i in range(24))
    put("csv", "good.csv", good.encode(), "0", seed_for="csv")
    seed("csv", "quoted.csv", b'a,"b,c","d""e"\r\n1,"2\n3",4\r\n')
    seed("csv", "bom_cr.csv", b"\xef\xbb\xbfx,y\r1,2\r3,4\r")
    put("csv", "empty.csv", b"", "3", "")
    put("csv", "header_only.csv", b"f1,f2,label\n", "3", "")
    put("csv", "ragged.csv", b"f1,f2,label\n1,2,a\n3,b\n4,5,6,c\n", "3", ":3", seed_for="csv")
    put("csv", "non_numeric.csv", b"f1,f2,label\n1,2,a\n3,abc,b\n", "3", "not a number", seed_for="csv")
    put("csv", "huge_exponent.csv", b"f1,f2,label\n1,2,a\n1e400,3,b\n", "3", "range", seed_for="csv")
    put("csv", "duplicate_header.csv", b"f1,f1,label\n1,2,a\n3,4,b\n", "3", "f1", seed_for="csv")
    put("csv", "unterminated_quote.csv", b'f1,label\n1,"a\n2,b\n', "3", "", seed_for="csv")
    put("csv", "no_label_column.csv", b"f1,f2\n1,2\n3,4\n", "3", "label")
    # Commas inside quotes are data, not separators: this file is valid.
    put("csv", "quoted_commas.csv", ("f1,f2,label\n" + "".join(
        f'{i},{2 * i},"class, {"xy"[i % 2]}"\n' for i in range(20))).encode(), "0", seed_for="csv")
    # Predictions files for `cnnkit report` (string columns, probabilities).
    seed("csv", "predictions.csv", b"path,label,predicted,p_a,p_b\nx.wav,a,b,0.25,0.75\ny.wav,b,b,0.1,0.9\n")


# ---- architectures (.cfg) and model files (.cnk) -----------------------------------------------------------

SMALL_CFG = """# a tiny classifier for the model-file corpus
[input]
name = input
shape = 1x6x6

[conv2d]
name = conv
filters = 2
size = 3
padding = same
activation = relu

[batchnorm]
name = bn

[global_avgpool]
name = gap

[dense]
name = logits
units = 3
"""
SMALL_PARAMS = 2 * 1 * 3 * 3 + 2 + 2 + 2 + 2 * 3 + 3  # conv w+b, bn gamma+beta, dense w+b
SMALL_BUFFERS = 2 + 2                                # bn running mean + var


def gen_cfg():
    put("cfg", "good.cfg", SMALL_CFG.encode(), "0", seed_for="cfg")
    for name in ("all_kinds.cfg", "fusion.cfg", "cnn_mel.cfg", "mlp.cfg"):
        with open(os.path.join(ROOT, "tests", "fixtures", "arch", name), "rb") as f:
            seed("cfg", name, f.read())
    put("cfg", "unknown_layer.cfg", SMALL_CFG.replace("[batchnorm]", "[frobnicate]").encode(), "3", "frobnicate",
        seed_for="cfg")
    put("cfg", "unknown_key.cfg", SMALL_CFG.replace("filters = 2", "filters = 2\nflavour = mint").encode(), "3",
        "flavour")
    put("cfg", "shapes_do_not_fit.cfg",
        SMALL_CFG.replace("padding = same", "padding = valid").replace("shape = 1x6x6", "shape = 1x2x2").encode(),
        "3", "", seed_for="cfg")
    put("cfg", "absurd_dimensions.cfg", SMALL_CFG.replace("shape = 1x6x6", "shape = 100000x100000x100000").encode(),
        "3", "")
    put("cfg", "absurd_filters.cfg", SMALL_CFG.replace("filters = 2", "filters = 2147483647").encode(), "3", "")
    put("cfg", "negative_size.cfg", SMALL_CFG.replace("size = 3", "size = -3").encode(), "3", "")
    many = "[input]\nshape = 1x4x4\n" + "[flatten]\n" * 4100
    put("cfg", "absurd_layer_count.cfg", many.encode(), "3", "")
    put("cfg", "repeated_key.cfg", SMALL_CFG.replace("units = 3", "units = 3\nunits = 4").encode(), "3", "units")
    put("cfg", "unknown_input.cfg", SMALL_CFG.replace("name = gap", "name = gap\nfrom = nowhere").encode(), "3",
        "nowhere", seed_for="cfg")
    put("cfg", "empty.cfg", b"", "3", "")
    put("cfg", "binary.cfg", bytes(range(256)), "3", "")


def section(tag, payload):
    head = struct.pack("<4sQ", tag, len(payload))
    return head + payload + struct.pack("<I", zlib.crc32(head + payload) & 0xFFFFFFFF)


def cnk_bytes(arch=SMALL_CFG, classes=("a", "b", "c"), prep="", n_params=SMALL_PARAMS, n_buffers=SMALL_BUFFERS,
              version=1, n_sections=5):
    rng = np.random.default_rng(3)
    params = rng.standard_normal(n_params).astype("<f4")
    buffers = np.concatenate([np.zeros(n_buffers // 2), np.ones(n_buffers - n_buffers // 2)]).astype("<f4")
    head = b"CNKMODEL" + struct.pack("<II", version, n_sections)
    out = head + struct.pack("<I", zlib.crc32(head) & 0xFFFFFFFF)
    out += section(b"ARCH", arch.encode())
    out += section(b"CLAS", "".join(c + "\n" for c in classes).encode())
    out += section(b"PREP", prep.encode())
    out += section(b"PARM", struct.pack("<Q", n_params) + params.tobytes())
    out += section(b"BUFF", struct.pack("<Q", n_buffers) + buffers.tobytes())
    return out


# The preprocessing text of an image model as `cnnkit train` wrote it (pipeline/preprocess.c's key=value lines).
IMAGE_PREP = ("input=image\nsample_rate=22050\nn_fft=2048\nhop_length=512\nn_mels=128\nn_scales=64\nfmin=0\nfmax=0\n"
              "wavelet_fmin=32\nsegment_frames=130\nsegment_hop=65\ntrain_hop=33\nmin_fill=32\nchannels=1\nheight=6\n"
              "width=6\nn_features=0\ncsv_drop=filename,length\nn_norm=1\nmean=0.49\nstd=0.11\narch_name=cnn\n")


def gen_models():
    good = put("model", "good.cnk", cnk_bytes(), "0", seed_for="modelfile")
    seed("modelfile", "good_with_preprocessing.cnk", cnk_bytes(prep=IMAGE_PREP))
    for cut in (0, 7, 19, 40, len(good) // 2, len(good) - 1):
        put("model", f"truncated_{cut}.cnk", good[:cut], "3", "", seed_for="modelfile" if cut in (40,) else None)
    for at in (3, 14, 60, len(good) // 2, len(good) - 2):
        flipped = bytearray(good)
        flipped[at] ^= 0x10
        put("model", f"flipped_byte_{at}.cnk", bytes(flipped), "3", "")
    put("model", "newer_version.cnk", cnk_bytes(version=7), "3", "newer", seed_for="modelfile")
    put("model", "absurd_section_count.cnk", cnk_bytes(n_sections=1 << 30), "3", "")
    put("model", "absurd_dimensions.cnk", cnk_bytes(arch=SMALL_CFG.replace("1x6x6", "100000x100000x100000")), "3", "")
    put("model", "absurd_layer_count.cnk",
        cnk_bytes(arch="[input]\nshape = 1x4x4\n" + "[flatten]\n" * 4100), "3", "")
    put("model", "unknown_layer.cnk", cnk_bytes(arch=SMALL_CFG.replace("[batchnorm]", "[frobnicate]")), "3", "",
        seed_for="modelfile")
    put("model", "params_do_not_fit.cnk", cnk_bytes(n_params=SMALL_PARAMS + 5), "3", "")
    put("model", "classes_do_not_fit.cnk", cnk_bytes(classes=("a", "b")), "3", "")
    put("model", "text.cnk", b"CNKMODEL? no, a text file\n", "3", "")


# ---- TensorFlow Lite (a minimal flatbuffer writer, enough for the corpus) ----------------------------------

class Table:
    def __init__(self, fields):
        self.fields = fields  # {field id: ("u8"|"i8"|"u32"|"i32"|"f32", value) or ("off", object)}


class Vec:
    def __init__(self, kind, items):
        self.kind, self.items = kind, items  # kind: "i32", "f32", "i64", "u8", "off"


class FlatBuffer:
    """Writes front to back: every referenced object lands after its reference (uoffsets are forward)."""

    def __init__(self):
        self.buf = bytearray()

    def align(self, n):
        while len(self.buf) % n:
            self.buf.append(0)

    def finish(self, root, ident=b"TFL3"):
        self.buf += b"\0\0\0\0" + ident
        self.patch(0, root)
        return bytes(self.buf)

    def patch(self, at, obj):
        pos = self.write(obj)
        struct.pack_into("<I", self.buf, at, pos - at)

    def write(self, obj):
        if isinstance(obj, str):
            obj = obj.encode()
        if isinstance(obj, bytes):
            self.align(4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(obj)) + obj + b"\0"
            return pos
        if isinstance(obj, Vec):
            return self.write_vec(obj)
        return self.write_table(obj)

    def write_vec(self, v):
        width = {"i32": 4, "f32": 4, "i64": 8, "u8": 1, "off": 4}[v.kind]
        self.align(max(4, width))
        if width == 8 and len(self.buf) % 8 == 0:
            self.buf += b"\0" * 4  # the elements (after the length) must be 8-aligned
        if v.kind == "u8":
            while (len(self.buf) + 4) % 16:
                self.buf += b"\0" * 4  # buffer data 16-aligned, as TFLite's writer does
        pos = len(self.buf)
        self.buf += struct.pack("<I", len(v.items))
        fmt = {"i32": "<i", "f32": "<f", "i64": "<q", "u8": "<B", "off": "<I"}[v.kind]
        slots = []
        for item in v.items:
            slots.append(len(self.buf))
            self.buf += struct.pack(fmt, 0 if v.kind == "off" else item)
        if v.kind == "off":
            for at, item in zip(slots, v.items):
                self.patch(at, item)
        return pos

    def write_table(self, t):
        n = max(t.fields) + 1 if t.fields else 0
        layout, size = {}, 4
        for fid in sorted(t.fields):
            kind = t.fields[fid][0]
            width = 1 if kind in ("u8", "i8") else 4
            size = (size + width - 1) // width * width
            layout[fid] = size
            size += width
        size = (size + 3) // 4 * 4
        self.align(2)
        vt_len = 4 + 2 * n
        if (len(self.buf) + vt_len) % 4:
            self.buf += b"\0\0"
        vtable = len(self.buf)
        self.buf += struct.pack("<HH", vt_len, size) + b"".join(struct.pack("<H", layout.get(i, 0)) for i in range(n))
        pos = len(self.buf)
        self.buf += struct.pack("<i", pos - vtable) + b"\0" * (size - 4)
        offsets = []
        for fid, (kind, value) in t.fields.items():
            at = pos + layout[fid]
            if kind == "off":
                offsets.append((at, value))
            else:
                struct.pack_into({"u8": "<B", "i8": "<b", "u32": "<I", "i32": "<i", "f32": "<f"}[kind], self.buf, at,
                                 value)
        for at, value in offsets:
            self.patch(at, value)
        return pos


def tfl_tensor(name, shape, ttype, buffer, quant=None):
    fields = {0: ("off", Vec("i32", shape)), 1: ("i8", ttype), 2: ("u32", buffer), 3: ("off", name)}
    if quant:
        scale, zero = quant
        fields[4] = ("off", Table({2: ("off", Vec("f32", [scale])), 3: ("off", Vec("i64", [zero]))}))
    return Table(fields)


def tflite_bytes(ops=("CONV_2D", "RESHAPE", "SOFTMAX"), quantized=False, opcodes=None, version=3):
    """A tiny graph: input 1x4x4x1 -> CONV_2D(2 filters, 3x3, SAME, RELU6) -> RESHAPE 1x32 -> SOFTMAX."""
    rng = np.random.default_rng(5)
    weights = rng.standard_normal((2, 3, 3, 1)).astype(np.float32)
    if quantized:
        w_data = bytes(rng.integers(0, 256, 18, dtype=np.uint8))
        w_tensor = tfl_tensor("conv/weights", [2, 3, 3, 1], 3, 2, (0.02, 128))
        b_data = np.array([100, -50], dtype="<i4").tobytes()
        b_tensor = tfl_tensor("conv/bias", [2], 2, 3, (0.0002, 0))
    else:
        w_data = weights.astype("<f4").tobytes()
        w_tensor = tfl_tensor("conv/weights", [2, 3, 3, 1], 0, 2)
        b_data = np.array([0.1, -0.2], dtype="<f4").tobytes()
        b_tensor = tfl_tensor("conv/bias", [2], 0, 3)
    tensors = [tfl_tensor("input", [1, 4, 4, 1], 0, 1), w_tensor, b_tensor,
               tfl_tensor("conv/out", [1, 4, 4, 2], 0, 0), tfl_tensor("flat", [1, 32], 0, 0),
               tfl_tensor("probs", [1, 32], 0, 0), tfl_tensor("new_shape", [2], 2, 4)]
    codes = opcodes or {"CONV_2D": 3, "RESHAPE": 22, "SOFTMAX": 25}
    names = list(codes)
    operators = [
        Table({0: ("u32", names.index(ops[0])), 1: ("off", Vec("i32", [0, 1, 2])), 2: ("off", Vec("i32", [3])),
               3: ("u8", 1), 4: ("off", Table({0: ("i8", 0), 1: ("i32", 1), 2: ("i32", 1), 3: ("i8", 3)}))}),
        Table({0: ("u32", names.index(ops[1])), 1: ("off", Vec("i32", [3, 6])), 2: ("off", Vec("i32", [4]))}),
        Table({0: ("u32", names.index(ops[2])), 1: ("off", Vec("i32", [4])), 2: ("off", Vec("i32", [5])),
               3: ("u8", 9), 4: ("off", Table({0: ("f32", 1.0)}))}),
    ]
    subgraph = Table({0: ("off", Vec("off", tensors)), 1: ("off", Vec("i32", [0])), 2: ("off", Vec("i32", [5])),
                      3: ("off", Vec("off", operators)), 4: ("off", "main")})
    opcode_tables = [Table({0: ("i8", min(c, 127)), 2: ("i32", 1), 3: ("i32", c)}) for c in codes.values()]
    buffers = [Table({}), Table({}), Table({0: ("off", Vec("u8", list(w_data)))}),
               Table({0: ("off", Vec("u8", list(b_data)))}),
               Table({0: ("off", Vec("u8", list(np.array([1, 32], dtype="<i4").tobytes())))})]
    model = Table({0: ("u32", version), 1: ("off", Vec("off", opcode_tables)), 2: ("off", Vec("off", [subgraph])),
                   3: ("off", "cnnkit corpus"), 4: ("off", Vec("off", buffers))})
    return FlatBuffer().finish(model)


def gen_tflite():
    good = put("tflite", "tiny_float.tflite", tflite_bytes(), "3", "", seed_for="tflite")
    put("tflite", "tiny_uint8.tflite", tflite_bytes(quantized=True), "3", "", seed_for="tflite")
    for cut in (4, 16, len(good) // 3, len(good) - 8):
        put("tflite", f"truncated_{cut}.tflite", good[:cut], "3", "")
    far = bytearray(good)
    struct.pack_into("<I", far, 0, 0xFFFFFF00)
    put("tflite", "root_offset_outside.tflite", bytes(far), "3", "outside|corrupt", seed_for="tflite")
    # The subgraphs vector's length made enormous: every element offset points past the end.
    model_pos = struct.unpack_from("<I", good, 0)[0]
    vt = model_pos - struct.unpack_from("<i", good, model_pos)[0]
    sub_field = model_pos + struct.unpack_from("<H", good, vt + 4 + 2 * 2)[0]
    sub_vec = sub_field + struct.unpack_from("<I", good, sub_field)[0]
    huge = bytearray(good)
    struct.pack_into("<I", huge, sub_vec, 0x3FFFFFFF)
    put("tflite", "vector_length_outside.tflite", bytes(huge), "3", "", seed_for="tflite")
    put("tflite", "unsupported_op.tflite",
        tflite_bytes(ops=("CONV_2D", "RESHAPE", "L2_NORMALIZATION"),
                     opcodes={"CONV_2D": 3, "RESHAPE": 22, "L2_NORMALIZATION": 11}), "3", "unsupported",
        seed_for="tflite")
    put("tflite", "text.tflite", b"not a flatbuffer\n", "3", "")
    put("tflite", "empty.tflite", b"", "3", "")


# ---- .npy and IDX seeds (fuzz only) ------------------------------------------------------------------------

def npy_bytes(array, version=1):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=(version, 0))
    return buf.getvalue()


def idx_bytes(values, type_code, dims):
    return struct.pack(">BBBB", 0, 0, type_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + values


def gen_npy_idx():
    seed("npy", "f32_3x4.npy", npy_bytes(np.arange(12, dtype="<f4").reshape(3, 4)))
    seed("npy", "f64_5.npy", npy_bytes(np.linspace(0, 1, 5)))
    seed("npy", "f32_v2.npy", npy_bytes(np.ones((2, 2, 2), dtype="<f4"), version=2))
    seed("npy", "scalar.npy", npy_bytes(np.array(3.5, dtype="<f4")))
    seed("npy", "fortran.npy", npy_bytes(np.asfortranarray(np.ones((2, 3), dtype="<f4"))))
    seed("idx", "u8_images.idx", idx_bytes(bytes(range(2 * 3 * 3)), 0x08, [2, 3, 3]))
    seed("idx", "u8_labels.idx", idx_bytes(bytes([1, 0, 2, 1]), 0x08, [4]))
    seed("idx", "f32.idx", idx_bytes(np.arange(6, dtype=">f4").tobytes(), 0x0D, [3, 2]))
    seed("idx", "i16.idx", idx_bytes(np.arange(4, dtype=">i2").tobytes(), 0x0B, [2, 2]))
    seed("idx", "f64.idx", idx_bytes(np.arange(2, dtype=">f8").tobytes(), 0x0E, [2]))
    seed("idx", "u8_images.idx.gz", gzip.compress(idx_bytes(bytes(range(2 * 3 * 3)), 0x08, [2, 3, 3]), mtime=0))
    seed("idx", "truncated.idx", idx_bytes(bytes(5), 0x08, [100, 2, 2]))


def gen_spectrogram_seeds():
    """fuzz_spectrogram: 16 bytes of plan parameters (see fuzz/targets.c cnk_fuzz_spectrogram), then int16 samples."""
    def header(flags, sr, n_fft, win, hop, mels, fmin, fmax, scales, omega, wavelet):
        return struct.pack("<BHHHHBBbBBB", flags, sr, n_fft, win, hop, mels, fmin, fmax, scales, omega, wavelet) + b"\0"

    clip = (tone(3000, 8000) * 24000).astype("<i2").tobytes()
    seeds = {
        "mel_default.bin": header(0b00000011, 8000, 512, 0, 128, 40, 0, 0, 0, 0, 0),
        "stft_reflect.bin": header(0b00000110, 8000, 256, 200, 64, 0, 0, 0, 0, 0, 0),
        "yamnet_like.bin": header(0b10111001, 16000, 512, 400, 160, 64, 3, 37, 0, 0, 0),
        "wavelet.bin": header(0b00000010, 8000, 512, 0, 128, 0, 4, 0, 24, 5, 1),
    }
    for name, head in seeds.items():
        seed("spectrogram", name, head + clip)
    seed("spectrogram", "mel_short_clip.bin", seeds["mel_default.bin"] + clip[:40])


def main():
    for d in (OUT, CORPUS):
        shutil.rmtree(d, ignore_errors=True)
    gen_audio()
    gen_images()
    gen_csv()
    gen_cfg()
    gen_models()
    gen_tflite()
    gen_npy_idx()
    gen_spectrogram_seeds()
    with open(os.path.join(OUT, "MANIFEST.tsv"), "w") as f:
        f.write("# kind\tfile\texit codes allowed\ta word the error line must hold (| = any of)\n")
        for kind, rel, expect, word in MANIFEST:
            f.write(f"{kind}\t{rel}\t{expect}\t{word}\n")
    total = sum(os.path.getsize(os.path.join(dp, n)) for d in (OUT, CORPUS) for dp, _, ns in os.walk(d) for n in ns)
    print(f"{len(MANIFEST)} corpus files in {OUT}, seeds in {CORPUS}, {total} bytes in all")


if __name__ == "__main__":
    main()
