#!/usr/bin/python3
"""Writes tests/fixtures/metrics/: random and edge-case prediction sets as cnnkit predictions CSVs, with
scikit-learn's answers for them (classification_report text and dict with zero_division=0,
confusion_matrix, log_loss, top_k_accuracy_score, per-class roc_auc_score), so test_metrics proves
cnnkit's metrics equal scikit-learn's. Run with Debian's /usr/bin/python3 (it has sklearn)."""
import csv
import io
import os
import warnings

import numpy as np
import sklearn
from sklearn.metrics import (classification_report, confusion_matrix, log_loss, roc_auc_score,
                             top_k_accuracy_score)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "metrics")
MAX_TOP_K = 5  # CNK_METRICS_MAX_TOP_K


def random_probs(rng, y_true_idx, n_classes, skill, decimals):
    """Dirichlet noise pushed towards the true class, rounded to `decimals` so the CSV stays small."""
    p = rng.dirichlet(np.ones(n_classes), size=len(y_true_idx))
    p[np.arange(len(y_true_idx)), y_true_idx] += skill * rng.random(len(y_true_idx))
    p /= p.sum(axis=1, keepdims=True)
    return np.round(p, decimals)


def write_case(name, labels, preds, class_space=None, probs=None, prob_fmt="%.4f", paths=None):
    """labels/preds: lists of str. class_space: the p_ columns' classes (any order), probs n x K."""
    rows = []
    header = (["path"] if paths is not None else []) + ["label", "predicted"]
    if probs is not None:
        header += ["p_" + c for c in class_space]
    prob_text = None
    if probs is not None:
        prob_text = [[prob_fmt % v for v in row] for row in probs]
        probs = np.array([[float(v) for v in row] for row in prob_text])  # exactly what the C side parses
    for i in range(len(labels)):
        row = ([paths[i]] if paths is not None else []) + [labels[i], preds[i]]
        if prob_text is not None:
            row += prob_text[i]
        rows.append(row)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    with open(os.path.join(OUT, name + ".csv"), "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())

    y_true = np.array(labels, dtype=object)
    y_pred = np.array(preds, dtype=object)
    classes = sorted(set(labels) | set(preds))  # Python str order = code point order = UTF-8 byte order
    text = classification_report(y_true, y_pred, digits=2, zero_division=0)
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    cmn = confusion_matrix(y_true, y_pred, labels=classes, normalize="true")
    with open(os.path.join(OUT, name + ".report.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    lines = ["sklearn %s" % sklearn.__version__, "n_samples %d" % len(labels), "n_classes %d" % len(classes)]
    for i, c in enumerate(classes):
        lines.append("class %d %s" % (i, c))
    for i, c in enumerate(classes):
        r = report[c]
        lines += ["precision %d %r" % (i, r["precision"]), "recall %d %r" % (i, r["recall"]),
                  "f1 %d %r" % (i, r["f1-score"]), "support %d %d" % (i, r["support"])]
    lines.append("accuracy %r" % report["accuracy"])
    for key, avg in (("macro", "macro avg"), ("weighted", "weighted avg")):
        for m, k in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            lines.append("%s_%s %r" % (key, m, report[avg][k]))
    for i in range(len(classes)):
        for j in range(len(classes)):
            lines.append("confusion %d %d %d" % (i, j, cm[i, j]))
            lines.append("confusion_norm %d %d %r" % (i, j, cmn[i, j]))
    if probs is not None:
        order = np.argsort(np.array(class_space, dtype=object), kind="stable")
        sorted_space = [class_space[o] for o in order]
        p_sorted = probs[:, order]
        k_all = len(sorted_space)
        if k_all >= 2:
            lines.append("log_loss %r" % log_loss(y_true, p_sorted, labels=sorted_space))
        for k in range(1, min(MAX_TOP_K, k_all) + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # k >= n_classes is "meaningless" but well defined
                if k_all == 2:
                    # scikit-learn treats two classes as binary and wants the positive class's score.
                    score = top_k_accuracy_score(y_true, p_sorted[:, 1], k=k, labels=sorted_space)
                else:
                    score = top_k_accuracy_score(y_true, p_sorted, k=k, labels=sorted_space)
            lines.append("top_k %d %r" % (k, score))
        for i, c in enumerate(classes):
            truth = (y_true == c).astype(int)
            if truth.min() == truth.max():
                lines.append("roc_auc %d nan" % i)
            else:
                col = class_space.index(c)
                lines.append("roc_auc %d %r" % (i, roc_auc_score(truth, probs[:, col])))
    with open(os.path.join(OUT, name + ".expected"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def confuse(rng, y_idx, n_classes, accuracy):
    pred = y_idx.copy()
    wrong = rng.random(len(y_idx)) > accuracy
    pred[wrong] = rng.integers(0, n_classes, wrong.sum())
    return pred


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261122)

    # Three classes, a decent classifier, probabilities and file paths.
    names = ["cat", "dog", "panda"]
    y = rng.integers(0, 3, 200)
    p = random_probs(rng, y, 3, 1.5, 6)
    pred = p.argmax(axis=1)
    write_case("random_3", [names[i] for i in y], [names[i] for i in pred], names, p, "%.6f",
               ["animals/%s/img_%03d.jpg" % (names[c], i) for i, c in enumerate(y)])

    # A class that is never predicted (zero precision by zero division).
    names = ["alpha", "beta", "delta", "gamma"]
    y = rng.integers(0, 4, 120)
    pred = confuse(rng, y, 3, 0.7)  # never index 3 = "gamma"
    write_case("never_predicted", [names[i] for i in y], [names[i] for i in pred])

    # A class that only appears as a prediction (support 0, recall by zero division).
    names = ["blues", "jazz", "rock"]
    y = rng.integers(0, 2, 90)
    pred = confuse(rng, y, 3, 0.6)
    write_case("only_predicted", [names[i] for i in y], [names[i] for i in pred])

    # One class only.
    write_case("one_class", ["solo"] * 17, ["solo"] * 17)

    # Two classes with probabilities (scikit-learn's binary paths).
    names = ["no", "yes"]
    y = rng.integers(0, 2, 150)
    p1 = np.clip(0.5 + (y - 0.5) * rng.random(150) * 1.6 + rng.normal(0, 0.2, 150), 0.001, 0.999)
    p1[np.isclose(p1, 0.5)] = 0.501
    p = np.stack([1 - p1, p1], axis=1)
    write_case("binary", [names[i] for i in y], [names[i] for i in (p1 > 0.5).astype(int)], names, p, "%.5f")

    # Fifty classes, pairwise summation beyond 8 terms, top-5 meaningful; column order shuffled.
    names = ["class_%02d" % i for i in range(50)]
    y = rng.integers(0, 50, 500)
    p = random_probs(rng, y, 50, 0.15, 4)
    pred = p.argmax(axis=1)
    perm = rng.permutation(50)
    write_case("classes_50", [names[i] for i in y], [names[i] for i in pred], [names[i] for i in perm],
               p[:, perm])

    # Unicode names: padding counts characters, order is by code point (= UTF-8 bytes).
    names = ["Zebra", "café", "naïve bird", "ß", "日本語", "émigré"]
    y = rng.integers(0, 6, 160)
    p = random_probs(rng, y, 6, 0.8, 4)
    pred = confuse(rng, y, 6, 0.65)
    write_case("unicode", [names[i] for i in y], [names[i] for i in pred], names, p)

    # Names that need CSV quoting (commas, quotes, leading space).
    names = ["a,b", 'say "hi"', "plain", " spaced"]
    y = rng.integers(0, 4, 80)
    p = random_probs(rng, y, 4, 0.5, 3)
    pred = confuse(rng, y, 4, 0.5)
    write_case("quoted", [names[i] for i in y], [names[i] for i in pred], names, p, "%.3f")

    # Tied probabilities: top-k and ROC AUC tie rules.
    names = ["a", "b", "c", "d", "e", "f"]
    y = rng.integers(0, 6, 100)
    p = rng.integers(0, 4, (100, 6)) / 4.0
    p[np.arange(100), y] += rng.integers(0, 2, 100) / 4.0
    pred = confuse(rng, y, 6, 0.5)
    write_case("ties", [names[i] for i in y], [names[i] for i in pred], names, p, "%.2f")

    # Values exactly on a rounding tie of the two-digit text (1/8, 3/8, 5/8): round-half-even.
    labels = ["x"] * 8 + ["y"] * 8 + ["z"] * 8
    preds = ["x"] * 1 + ["y"] * 7 + ["y"] * 3 + ["z"] * 5 + ["z"] * 5 + ["x"] * 3
    write_case("rounding", labels, preds)


if __name__ == "__main__":
    main()
