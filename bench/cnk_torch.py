"""cnk_torch.py: builds the PyTorch nn.Module identical to a cnnkit `.cfg` architecture (same layers, same
padding rules, same parameter order and layouts as nn/arch.h), so flat parameter/buffer vectors copy both ways.

Used by the parameter-count fixtures (tests/ref/gen_arch.py), the kernels' parity fixtures and the PyTorch
side of the benchmark. Run with Debian's /usr/bin/python3 (it has torch).

    from cnk_torch import build_torch_model, get_flat_params, set_flat_params
    model = build_torch_model(open("net.cfg").read())
    logits = model(x)                     # one tensor per input layer; a tuple if several outputs
    vec = get_flat_params(model)          # numpy float32, cnnkit order
    set_flat_params(model, vec)
    get_flat_buffers(model) / set_flat_buffers(model, vec)   # BN running_mean, running_var
    model, contents = torch_model_from_cnk("model.cnk")       # a trained cnnkit model in PyTorch

Semantics mirrored from nn/arch.h: TensorFlow SAME padding (odd extra cell bottom/right, via F.pad when
asymmetric), max pooling never picks a padded cell, average pooling does not count padded cells, dense
flattens its input in C, H, W order, softmax is over channels, BN momentum in PyTorch's convention, frozen
(trainable = 0) layers have requires_grad False and frozen batchnorm always uses its running statistics.
"""

import math
import re

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = ("input", "conv2d", "depthwise_conv2d", "maxpool", "avgpool", "global_avgpool", "batchnorm", "dense",
         "dropout", "flatten", "add", "concat", "activation", "softmax")
ACTIVATIONS = ("linear", "step", "sigmoid", "tanh", "relu", "relu6", "leaky_relu", "elu", "softmax")
COMMON_KEYS = {"name", "from", "trainable"}
WINDOW_KEYS = {"size", "stride", "padding"}
KEYS = {
    "input": {"shape"},
    "conv2d": {"filters", "dilation", "bias", "activation", "alpha"} | WINDOW_KEYS,
    "depthwise_conv2d": {"dilation", "bias", "activation", "alpha"} | WINDOW_KEYS,
    "maxpool": set(WINDOW_KEYS),
    "avgpool": set(WINDOW_KEYS),
    "global_avgpool": set(),
    "batchnorm": {"eps", "momentum", "activation", "alpha"},
    "dense": {"units", "bias", "activation", "alpha"},
    "dropout": {"rate"},
    "flatten": set(),
    "add": {"activation", "alpha"},
    "concat": set(),
    "activation": {"activation", "alpha"},
    "softmax": set(),
}


class CfgError(ValueError):
    pass


# ----------------------------------------------------------------------------------------------------------
# Parsing (the same grammar as nn/cfg.c; the C parser is the strict one, this one is for trusted text)

def _pair(text, what):
    parts = text.lower().split("x")
    if len(parts) == 1:
        return int(parts[0]), int(parts[0])
    if len(parts) == 2:
        return int(parts[0]), int(parts[1])
    raise CfgError("bad %s '%s'" % (what, text))


def parse_cfg(text):
    """Returns (layers, outputs): layers = list of dicts with 'kind', 'name', 'line' and string values;
    outputs = list of output names (may be empty = last layer)."""
    blocks, outputs, current = [], [], None
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise CfgError("line %d: bad block header" % line_no)
            kind = line[1:-1].strip()
            if kind == "network":
                current = {"kind": "network", "line": line_no}
                continue
            if kind not in KINDS:
                raise CfgError("line %d: unknown layer kind '%s'" % (line_no, kind))
            current = {"kind": kind, "line": line_no}
            blocks.append(current)
            continue
        if current is None or "=" not in line:
            raise CfgError("line %d: expected [kind] or key = value" % line_no)
        key, value = (s.strip() for s in line.split("=", 1))
        if current["kind"] == "network":
            if key != "outputs":
                raise CfgError("line %d: unknown key '%s'" % (line_no, key))
            outputs = [s.strip() for s in value.split(",")]
            continue
        if key not in KEYS[current["kind"]] | COMMON_KEYS:
            raise CfgError("line %d: unknown key '%s' in [%s]" % (line_no, key, current["kind"]))
        current[key] = value
    for i, b in enumerate(blocks):
        b.setdefault("name", "%s%d" % (b["kind"], i))
    return blocks, outputs


def window_out(size, kernel, stride, dilation, padding):
    """(out, before, after) for one dimension; padding = 'same' | 'valid' | (before, after)."""
    eff = (kernel - 1) * dilation + 1
    if padding == "same":
        out = (size + stride - 1) // stride
        total = max((out - 1) * stride + eff - size, 0)
        return out, total // 2, total - total // 2
    if padding == "valid":
        before, after = 0, 0
    else:
        before, after = padding
    out = (size + before + after - eff) // stride + 1
    return out, before, after


def _padding_spec(text):
    text = (text or "0").strip().lower()
    if text in ("same", "valid"):
        return text, text
    parts = [int(p) for p in text.split(",")]
    if len(parts) == 1:
        return (parts[0], parts[0]), (parts[0], parts[0])
    if len(parts) == 4:
        return (parts[0], parts[1]), (parts[2], parts[3])
    raise CfgError("bad padding '%s'" % text)


def _activation(block, default="linear"):
    kind = block.get("activation", default)
    if kind not in ACTIVATIONS:
        raise CfgError("unknown activation '%s'" % kind)
    alpha = float(block.get("alpha", "1.0" if kind == "elu" else "0.01"))
    return kind, alpha


def apply_activation(x, kind, alpha):
    if kind == "linear":
        return x
    if kind == "step":
        return (x > 0).to(x.dtype)
    if kind == "sigmoid":
        return torch.sigmoid(x)
    if kind == "tanh":
        return torch.tanh(x)
    if kind == "relu":
        return F.relu(x)
    if kind == "relu6":
        return F.relu6(x)
    if kind == "leaky_relu":
        return F.leaky_relu(x, alpha)
    if kind == "elu":
        return F.elu(x, alpha)
    if kind == "softmax":
        return torch.softmax(x, dim=1)
    raise CfgError("unknown activation '%s'" % kind)


# ----------------------------------------------------------------------------------------------------------
# Layers

class _Window(nn.Module):
    """Shared by conv / depthwise / pools: pads explicitly (F.pad) only when the padding is asymmetric."""

    def set_window(self, in_hw, block, dilation=(1, 1)):
        kh, kw = _pair(block.get("size", "1"), "size")
        sh, sw = _pair(block.get("stride", "1"), "stride")
        pad_h, pad_w = _padding_spec(block.get("padding", "0"))
        oh, top, bottom = window_out(in_hw[0], kh, sh, dilation[0], pad_h)
        ow, left, right = window_out(in_hw[1], kw, sw, dilation[1], pad_w)
        if oh <= 0 or ow <= 0:
            raise CfgError("layer '%s': window does not fit its %dx%d input" % (block["name"], *in_hw))
        self.kernel, self.stride, self.dilation = (kh, kw), (sh, sw), dilation
        self.pads = (left, right, top, bottom)
        self.symmetric = top == bottom and left == right
        self.out_hw = (oh, ow)


class Conv(_Window):
    def __init__(self, block, in_shape, depthwise):
        super().__init__()
        c_in = in_shape[0]
        c_out = c_in if depthwise else int(block["filters"])
        dilation = _pair(block.get("dilation", "1"), "dilation")
        self.set_window(in_shape[1:], block, dilation)
        pad = (self.pads[2], self.pads[0]) if self.symmetric else 0
        self.conv = nn.Conv2d(c_in, c_out, self.kernel, self.stride, pad, dilation,
                              groups=c_in if depthwise else 1, bias=block.get("bias", "1") == "1")
        self.act = _activation(block)
        self.out_shape = (c_out, *self.out_hw)

    def tensors(self):
        out = [("weight", self.conv.weight)]
        if self.conv.bias is not None:
            out.append(("bias", self.conv.bias))
        return out

    def forward(self, x):
        if not self.symmetric:
            x = F.pad(x, self.pads)
        return apply_activation(self.conv(x), *self.act)


class Pool(_Window):
    def __init__(self, block, in_shape, is_max):
        super().__init__()
        self.set_window(in_shape[1:], block)
        self.is_max = is_max
        self.any_pad = any(self.pads)
        self.out_shape = (in_shape[0], *self.out_hw)

    def forward(self, x):
        if self.is_max:
            if self.any_pad:
                x = F.pad(x, self.pads, value=-math.inf)
            return F.max_pool2d(x, self.kernel, self.stride)
        if not self.any_pad:
            return F.avg_pool2d(x, self.kernel, self.stride)
        # Padded cells are not counted: divide the zero-padded sum by the number of real cells.
        summed = F.avg_pool2d(F.pad(x, self.pads), self.kernel, self.stride, divisor_override=1)
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        count = F.avg_pool2d(F.pad(ones, self.pads), self.kernel, self.stride, divisor_override=1)
        return summed / count


class BatchNorm(nn.Module):
    def __init__(self, block, in_shape):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_shape[0], eps=float(block.get("eps", "1e-5")),
                                 momentum=float(block.get("momentum", "0.1")))
        self.act = _activation(block)
        self.out_shape = in_shape
        self.frozen = block.get("trainable", "1") == "0"

    def tensors(self):
        return [("gamma", self.bn.weight), ("beta", self.bn.bias)]

    def buffers_list(self):
        return [("running_mean", self.bn.running_mean), ("running_var", self.bn.running_var)]

    def forward(self, x):
        if self.frozen:  # frozen batchnorm always normalises with its running statistics
            x = F.batch_norm(x, self.bn.running_mean, self.bn.running_var, self.bn.weight, self.bn.bias,
                             False, 0.0, self.bn.eps)
        else:
            x = self.bn(x)
        return apply_activation(x, *self.act)


class Dense(nn.Module):
    def __init__(self, block, in_shape):
        super().__init__()
        units = int(block["units"])
        self.fc = nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], units, bias=block.get("bias", "1") == "1")
        self.act = _activation(block)
        self.out_shape = (units, 1, 1)

    def tensors(self):
        out = [("weight", self.fc.weight)]
        if self.fc.bias is not None:
            out.append(("bias", self.fc.bias))
        return out

    def forward(self, x):
        y = self.fc(x.reshape(x.shape[0], -1))
        return apply_activation(y, *self.act).reshape(x.shape[0], -1, 1, 1)


class Lambda(nn.Module):
    def __init__(self, fn, out_shape):
        super().__init__()
        self.fn = fn
        self.out_shape = out_shape

    def forward(self, *xs):
        return self.fn(*xs)


def _make_layer(block, in_shapes):
    kind, s = block["kind"], in_shapes[0] if in_shapes else None
    if kind == "conv2d":
        return Conv(block, s, depthwise=False)
    if kind == "depthwise_conv2d":
        return Conv(block, s, depthwise=True)
    if kind in ("maxpool", "avgpool"):
        return Pool(block, s, kind == "maxpool")
    if kind == "batchnorm":
        return BatchNorm(block, s)
    if kind == "dense":
        return Dense(block, s)
    if kind == "global_avgpool":
        return Lambda(lambda x: x.mean(dim=(2, 3), keepdim=True), (s[0], 1, 1))
    if kind == "dropout":
        drop = nn.Dropout(float(block.get("rate", "0.5")))
        drop.out_shape = s
        return drop
    if kind == "flatten":
        return Lambda(lambda x: x.reshape(x.shape[0], -1, 1, 1), (s[0] * s[1] * s[2], 1, 1))
    if kind == "add":
        if any(t != s for t in in_shapes):
            raise CfgError("layer '%s': add inputs have different shapes" % block["name"])
        act = _activation(block)
        return Lambda(lambda *xs: apply_activation(sum(xs[1:], xs[0]), *act), s)
    if kind == "concat":
        if any(t[1:] != s[1:] for t in in_shapes):
            raise CfgError("layer '%s': concat inputs differ in height/width" % block["name"])
        return Lambda(lambda *xs: torch.cat(xs, dim=1), (sum(t[0] for t in in_shapes), s[1], s[2]))
    if kind == "activation":
        act = _activation(block)
        return Lambda(lambda x: apply_activation(x, *act), s)
    if kind == "softmax":
        return Lambda(lambda x: torch.softmax(x, dim=1), s)
    raise CfgError("unknown layer kind '%s'" % kind)


# ----------------------------------------------------------------------------------------------------------
# The network

class CnkNet(nn.Module):
    """forward(*inputs): one NCHW tensor per [input] layer, in cfg order. Returns the main output (a tuple of
    all declared outputs if there are several); outputs of shape (N, C, 1, 1) are returned as (N, C)."""

    def __init__(self, cfg_text):
        super().__init__()
        blocks, outputs = parse_cfg(cfg_text)
        if not blocks:
            raise CfgError("no layers")
        self.names, self.kinds, self.sources, self.shapes = [], [], [], []
        self.layers = nn.ModuleDict()
        self.input_names, self.trainable = [], {}
        index = {}
        for i, block in enumerate(blocks):
            name = block["name"]
            if name in index:
                raise CfgError("duplicate layer name '%s'" % name)
            if block["kind"] == "input":
                shape = tuple(int(v) for v in block["shape"].lower().split("x"))
                srcs = []
                self.input_names.append(name)
            else:
                if "from" in block:
                    srcs = []
                    for src in block["from"].split(","):
                        if src.strip() not in index:
                            raise CfgError("layer '%s': unknown input layer '%s'" % (name, src.strip()))
                        srcs.append(index[src.strip()])
                elif i == 0:
                    raise CfgError("the first layer must be an [input]")
                else:
                    srcs = [i - 1]
                module = _make_layer(block, [self.shapes[j] for j in srcs])
                self.layers["l_" + name] = module  # prefixed: a layer may be called 'update' or 'keys'
                shape = tuple(module.out_shape)
                trainable = block.get("trainable", "1") != "0"
                for p in module.parameters():
                    p.requires_grad_(trainable)
            index[name] = i
            self.names.append(name)
            self.kinds.append(block["kind"])
            self.sources.append(srcs)
            self.shapes.append(shape)
        self.outputs = [index[o] for o in outputs] if outputs else [len(blocks) - 1]

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise ValueError("expected %d inputs, got %d" % (len(self.input_names), len(inputs)))
        values, next_input = [], 0
        for i, name in enumerate(self.names):
            if self.kinds[i] == "input":
                values.append(inputs[next_input])
                next_input += 1
            else:
                values.append(self.layers["l_" + name](*[values[j] for j in self.sources[i]]))
        outs = []
        for o in self.outputs:
            y = values[o]
            outs.append(y.reshape(y.shape[0], -1) if y.shape[2:] == (1, 1) else y)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def layer_outputs(self, *inputs):
        """Every layer's output (a list in arch order), for shape checks and intermediate comparisons."""
        values, next_input = [], 0
        for i, name in enumerate(self.names):
            if self.kinds[i] == "input":
                values.append(inputs[next_input])
                next_input += 1
            else:
                values.append(self.layers["l_" + name](*[values[j] for j in self.sources[i]]))
        return values


def build_torch_model(cfg_text):
    """The PyTorch model of a cnnkit cfg text (freshly initialised by PyTorch; copy weights with
    set_flat_params)."""
    return CnkNet(cfg_text)


def param_tensors(model):
    """[(layer name, suffix, tensor)] of trainable-kind tensors in cnnkit's flat order."""
    out = []
    for name in model.names:
        module = model.layers["l_" + name] if "l_" + name in model.layers else None
        if module is not None and hasattr(module, "tensors"):
            out.extend((name, suffix, t) for suffix, t in module.tensors())
    return out


def buffer_tensors(model):
    """[(layer name, suffix, tensor)] of buffers (BN running_mean, running_var) in cnnkit's flat order."""
    out = []
    for name in model.names:
        module = model.layers["l_" + name] if "l_" + name in model.layers else None
        if module is not None and hasattr(module, "buffers_list"):
            out.extend((name, suffix, t) for suffix, t in module.buffers_list())
    return out


def _flat(tensors):
    if not tensors:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([t.detach().cpu().reshape(-1).numpy().astype(np.float32) for _, _, t in tensors])


def _set(tensors, vec):
    vec = np.asarray(vec, dtype=np.float32).reshape(-1)
    total = sum(t.numel() for _, _, t in tensors)
    if vec.size != total:
        raise ValueError("flat vector has %d values, the model needs %d" % (vec.size, total))
    pos = 0
    with torch.no_grad():
        for _, _, t in tensors:
            n = t.numel()
            t.copy_(torch.from_numpy(vec[pos:pos + n].copy()).reshape(t.shape))
            pos += n


def get_flat_params(model):
    return _flat(param_tensors(model))


def set_flat_params(model, vec):
    _set(param_tensors(model), vec)


def get_flat_grads(model):
    """Gradients in the flat parameter order (zeros where a tensor has no gradient)."""
    parts = []
    for _, _, t in param_tensors(model):
        g = t.grad if t.grad is not None else torch.zeros_like(t)
        parts.append(g.detach().cpu().reshape(-1).numpy().astype(np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def get_flat_buffers(model):
    return _flat(buffer_tensors(model))


def set_flat_buffers(model, vec):
    _set(buffer_tensors(model), vec)


def count_params(model):
    """(total parameters, trainable parameters, buffer elements) as cnnkit counts them."""
    params = param_tensors(model)
    total = sum(t.numel() for _, _, t in params)
    trainable = sum(t.numel() for _, _, t in params if t.requires_grad)
    buffers = sum(t.numel() for _, _, t in buffer_tensors(model))
    return total, trainable, buffers


def layer_param_counts(model):
    """{layer name: (parameter elements, buffer elements)} for every layer."""
    counts = {name: [0, 0] for name in model.names}
    for name, _, t in param_tensors(model):
        counts[name][0] += t.numel()
    for name, _, t in buffer_tensors(model):
        counts[name][1] += t.numel()
    return {k: tuple(v) for k, v in counts.items()}


# ----------------------------------------------------------------------------------------------------------
# .cnk model files (layout in nn/modelfile.h)

_SECTIONS = (b"ARCH", b"CLAS", b"PREP", b"PARM", b"BUFF")


def read_cnk(path):
    """Reads a cnnkit .cnk file (checking magic, version and every CRC) into a dict with arch_text, classes,
    preprocess (dict), params and buffers (float32 numpy arrays)."""
    import struct
    import zlib

    data = open(path, "rb").read()
    if data[:8] != b"CNKMODEL" or len(data) < 20:
        raise ValueError("%s: not a cnnkit model file" % path)
    version, n_sections, header_crc = struct.unpack_from("<III", data, 8)
    if zlib.crc32(data[:16]) != header_crc or version not in (1, 2, 3) or n_sections != len(_SECTIONS):
        raise ValueError("%s: bad header (version %d)" % (path, version))
    pos, payloads = 20, []
    for tag in _SECTIONS:
        got, length = struct.unpack_from("<4sQ", data, pos)
        end = pos + 12 + length
        if got != tag or end + 4 > len(data) or zlib.crc32(data[pos:end]) != struct.unpack_from("<I", data, end)[0]:
            raise ValueError("%s: corrupted %s section" % (path, tag.decode()))
        payloads.append(data[pos + 12:end])
        pos = end + 4
    arrays = []
    for payload in payloads[3:]:
        (count,) = struct.unpack_from("<Q", payload)
        arrays.append(np.frombuffer(payload[8:], dtype="<f4", count=count).astype(np.float32))
    prep = dict(line.split("=", 1) for line in payloads[2].decode().splitlines() if "=" in line)
    return {"arch_text": payloads[0].decode(), "classes": payloads[1].decode().splitlines(), "preprocess": prep,
            "params": arrays[0], "buffers": arrays[1]}


def torch_model_from_cnk(path):
    """The PyTorch model of a .cnk file with its weights loaded (eval mode), and the file's contents."""
    contents = read_cnk(path)
    model = build_torch_model(contents["arch_text"])
    set_flat_params(model, contents["params"])
    set_flat_buffers(model, contents["buffers"])
    model.eval()
    return model, contents


if __name__ == "__main__":
    import sys

    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    net = build_torch_model(text)
    for name, shape in zip(net.names, net.shapes):
        print("%-24s %s" % (name, "x".join(str(v) for v in shape)))
    print("params=%d trainable=%d buffers=%d" % count_params(net))
