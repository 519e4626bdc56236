"""Random model graphs through the recipes: a verified artifact or a KerasSqueezeError.

The model passed in is unchanged (weights compared before and after), and
nothing is left behind: a failed call writes no file, a saved result holds
exactly model.tflite, report.json, report.md, report.html and its charts. Shrunk failures are kept as
explicit models in test_graph_regressions.py.
"""

from __future__ import annotations

import tempfile

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import cases, graphs
from tests.fuzz.strategies import budget


def _check(spec, recipe, **kwargs):
    with tempfile.TemporaryDirectory() as tmp:
        outcome = graphs.run_recipe(spec, recipe, tmp, **kwargs)
    assert not cases.problems(outcome), f"{recipe}: {outcome}\n{graphs.spec_source(spec)}"


@budget(8)
@given(spec=graphs.graph_specs(), recipe=st.sampled_from(graphs.PTQ_RECIPES))
def test_post_training_recipes(spec, recipe):
    _check(spec, recipe)


@budget(3)
@given(
    spec=graphs.graph_specs(min_nodes=3),
    recipe=st.sampled_from(graphs.TRAINING_RECIPES),
    distill=st.sampled_from([None, False]),
)
def test_training_recipes(spec, recipe, distill):
    _check(spec, recipe, distill=distill)
