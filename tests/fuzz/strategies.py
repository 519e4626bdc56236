"""Hypothesis strategies of damaged inputs, and the fixed example budget of each reader.

Every run draws new cases (derandomize=False, no example database); on a
failure hypothesis prints the falsifying example and a `@reproduce_failure`
blob that replays it. `KS_FUZZ_SCALE=10 pytest tests/fuzz` runs ten times
the CI budget; `pytest --hypothesis-seed=N` replays a whole run.
"""

from __future__ import annotations

import datetime
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.fuzz import cases

SCALE = float(os.environ.get("KS_FUZZ_SCALE", "1"))


def budget(examples: int, deadline_s: float | None = None) -> settings:
    """The settings of one fuzz test: `examples` cases per run (times KS_FUZZ_SCALE)."""
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None if deadline_s is None else datetime.timedelta(seconds=deadline_s),
        derandomize=False,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


DAMAGE = ("truncate", "flip", "overwrite", "random", "empty", "header", "splice")


@st.composite
def damaged(draw, data: bytes, kinds=DAMAGE):
    """`data` damaged one way: truncated, bits flipped, bytes set, replaced, spliced."""
    kind = draw(st.sampled_from(kinds))
    n = len(data)
    if kind == "truncate":
        return cases.truncate(data, draw(st.integers(0, max(n - 1, 0))))
    if kind == "flip":
        count = draw(st.integers(1, 64))
        flips = draw(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 7)), min_size=count))
        return cases.flip_bits(data, flips[:count])
    if kind == "overwrite":
        edits = draw(
            st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=8)
        )
        return cases.overwrite(data, edits)
    if kind == "random":
        return draw(st.binary(max_size=4096))
    if kind == "empty":
        return b""
    if kind == "header":  # a valid beginning, then garbage
        keep = draw(st.integers(0, min(n, 64)))
        return data[:keep] + draw(st.binary(max_size=2048))
    start, stop = draw(st.integers(0, n)), draw(st.integers(0, n))
    return cases.splice(data, start, stop, draw(st.binary(max_size=256)))


SMALL_TFLITE = ("small_cnn_int8.tflite", "small_cnn_float32.tflite", "student_int8.tflite")
ALL_TFLITE = (
    *SMALL_TFLITE,
    "small_cnn_dynamic.tflite",
    "small_cnn_float16.tflite",
    "digits_cnn_qat_uint8io.tflite",
    "digits_cnn_pruned75_int8.tflite",
)
EXTREMES = (*cases.HUGE, *cases.NEGATIVE, 0, 1, 3, 200)


@st.composite
def impossible_sizes(draw, names=ALL_TFLITE):
    """A reference .tflite with one index or size set to a value that cannot fit the file."""
    name = draw(st.sampled_from(names))
    field = draw(st.sampled_from(cases.TFLITE_FIELDS))
    value = draw(st.one_of(st.sampled_from(EXTREMES), st.integers(-(2**40), 2**40)))
    return cases.edit_tflite(cases.reference_tflite(name), field, draw(st.integers(0, 64)), value)


@st.composite
def damaged_tflite(draw, names=ALL_TFLITE):
    """Damaged .tflite bytes: byte-level damage, an impossible size, or a cut root vtable."""
    how = draw(st.sampled_from(("bytes", "bytes", "sizes", "vtable")))
    if how == "sizes":
        return draw(impossible_sizes(names))
    reference = cases.reference_tflite(draw(st.sampled_from(names)))
    if how == "vtable":
        return cases.cut_root_vtable(reference, draw(st.integers(0, 7)))
    return draw(damaged(reference))


# Text damage: the characters logs are made of, so numbers and keys get broken.
LOG_ALPHABET = "0123456789.:=eE+-_ \t\n%[]()KiBMGcount=avgstdmin,;/|\\ABCXYZ\r\x00\ufffd"


@st.composite
def damaged_text(draw, text: str):
    """`text` with characters replaced, deleted, inserted or repeated."""
    chars = list(text)
    for _ in range(draw(st.integers(1, 40))):
        op = draw(st.sampled_from(("replace", "delete", "insert", "repeat")))
        pos = draw(st.integers(0, max(len(chars) - 1, 0)))
        if op == "insert" or not chars:
            chars.insert(pos, draw(st.text(LOG_ALPHABET, min_size=1, max_size=8)))
        elif op == "replace":
            chars[pos] = draw(st.sampled_from(LOG_ALPHABET))
        elif op == "delete":
            del chars[pos]
        else:  # one character, so repeats at one place add up instead of multiplying
            chars[pos] = chars[pos][0] * draw(st.integers(2, 5000))
    return "".join(chars)
