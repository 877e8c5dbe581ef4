"""gpubound.Guardrail: replaying a log gives the audit's numbers at every step."""

import json

import numpy as np
import pytest

import gpubound

MODEL = {
    "hypotheses": {"kind": "grid", "k": 2, "d": 3},
    "observation": {"kind": "gaussian", "sigma": 1.0, "harm_threshold": 1.0},
}


def replay(log_path):
    """(model, [(stream, step, table, action, outcome)]) from a JSON Lines log."""
    model, rows, table, stream, step = None, [], None, None, 0
    for line in log_path.read_text().splitlines():
        o = json.loads(line)
        if o["type"] == "model":
            model = {k: v for k, v in o.items() if k != "type"}
        elif o["type"] == "stream":
            stream, table, step = o.get("id"), o.get("candidates"), 0
        else:
            step += 1
            rows.append((stream, step, np.array(o.get("candidates", table), dtype=float),
                         o["action"], o.get("outcome")))
    return model, rows


@pytest.mark.parametrize("which", ["example", "simulated"])
def test_replaying_a_log_gives_the_audits_numbers(which, request):
    log = request.getfixturevalue(which)
    model, rows = replay(log)
    steps = gpubound.audit(log, delta=[0.05, 0.5], backend="cpu").steps
    g = gpubound.Guardrail(model, delta=[0.05, 0.5])
    columns = [c for c in steps.column_names
               if c.split("[")[0] in ("posterior_predictive", "cautious_theory",
                                      "plausible_set", "ville_max", "ville_sum")]
    by_step = {}
    for r in steps.to_pylist():
        by_step.setdefault((str(r["stream"]), r["step"]), []).append(r)
    last = None
    for stream, step, table, action, outcome in rows:
        if stream != last:
            g.reset()
            last = stream
        est = g.estimates(table)
        want = by_step[(str(stream), step)]
        assert sorted(est) == sorted(columns)
        for c in columns:
            assert est[c].tolist() == [w[c] for w in want], (stream, step, c)
        v = g.check(table, action)
        assert v["estimate"] == want[action]["plausible_set[alpha=" + columns[2].split("=")[1]]
        g.observe(table, action, outcome)
    assert g.steps == rows[-1][1]


def test_an_estimate_equal_to_the_threshold_is_allowed():
    x = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    probe = gpubound.Guardrail(MODEL)
    e = probe.estimates(x)["plausible_set[alpha=0.00625]"]
    at = gpubound.Guardrail(MODEL, threshold=float(e[1]))
    assert at.check(x, 1)["allowed"]
    below = gpubound.Guardrail(MODEL, threshold=float(np.nextafter(e[1], 0)))
    v = below.check(x, 1)
    assert not v["allowed"] and v["safest_candidate"] == 0
    assert v["safest_estimate"] == e[0]


def test_observe_and_reset_move_the_posterior():
    x = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    g = gpubound.Guardrail(MODEL, estimator="posterior_predictive")
    prior = g.estimates(x)["posterior_predictive"].copy()
    g.observe(x, 1, 3.0)  # a harmful outcome: harm is more likely now
    assert g.steps == 1
    assert g.estimates(x)["posterior_predictive"][1] > prior[1]
    g.observe(x, 0, None)  # no outcome, no update
    assert g.steps == 2
    g.reset()
    assert g.steps == 0
    assert g.estimates(x)["posterior_predictive"].tolist() == prior.tolist()


def test_bad_input_raises_value_error():
    g = gpubound.Guardrail(MODEL)
    with pytest.raises(ValueError, match="d = 3"):
        g.estimates(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"d = 3.*got \(3,\)"):
        g.estimates(np.zeros(3))  # one candidate needs a row of its own
    with pytest.raises(ValueError, match="A ≥ 1"):
        g.observe(np.zeros((0, 3)), 0, 1.0)
    with pytest.raises(ValueError):
        g.estimates([["a", "b", "c"]])
    with pytest.raises(ValueError):
        g.check(np.zeros((2, 3)), 5)
    with pytest.raises(ValueError):
        g.estimates(np.array([[0.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="unknown estimator"):
        gpubound.Guardrail(MODEL, estimator="oracle")
    with pytest.raises(ValueError, match="threshold"):
        gpubound.Guardrail(MODEL, threshold=1.5)
    with pytest.raises(TypeError):
        gpubound.Guardrail(None)


def test_estimates_read_like_a_dict_of_rows():
    x = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    g = gpubound.Guardrail(MODEL, delta=[0.05, 0.5])
    e = g.estimates(x)
    names = list(g._native.column_names)
    # 2 estimators without α, 3 families with one column per α
    assert list(e) == list(e.keys()) == names and len(e) == 2 + 3 * 2
    assert "cautious_theory" in e and "oracle" not in e
    assert e.array.shape == (len(names), 2)
    as_dict, to_dict = dict(e), e.to_dict()
    assert list(to_dict) == names
    for i, name in enumerate(names):
        assert e[name].tolist() == e.array[i].tolist() == as_dict[name].tolist()
        assert to_dict[name].tolist() == e.array[i].tolist()
        assert e.get(name) is not None
    with pytest.raises(KeyError):
        e["oracle"]
    assert "posterior_predictive" in repr(e)


def test_a_later_call_leaves_earlier_estimates_as_they_were():
    x = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    g = gpubound.Guardrail(MODEL, estimator="posterior_predictive")
    first = g.estimates(x)
    kept = first.array.copy()
    g.observe(x, 1, 3.0)
    later = g.estimates(x)
    assert later["posterior_predictive"][1] > first["posterior_predictive"][1]
    assert first.array.tolist() == kept.tolist()


def unaligned(x):
    """`x` in memory one byte off float64 alignment."""
    u = np.frombuffer(bytearray(x.size * 8 + 1), dtype=np.float64, offset=1, count=x.size)
    u = u.reshape(x.shape)
    u[...] = x
    assert not u.flags.aligned and u.flags.c_contiguous
    return u


@pytest.mark.parametrize(
    "convert",
    [
        lambda x: x.tolist(),  # a list of lists
        lambda x: np.asfortranarray(x),  # not C-contiguous
        lambda x: x.astype(np.int64),  # not float64
        lambda x: np.repeat(x, 2, axis=0)[::2],  # a strided view
        lambda x: unaligned(x),  # C-contiguous float64, misaligned
    ],
)
def test_any_array_like_gives_the_float64_arrays_numbers(convert):
    x = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    g = gpubound.Guardrail(MODEL, delta=[0.05, 0.5])
    want = g.estimates(x).array.tolist()
    assert g.estimates(convert(x)).array.tolist() == want
    assert g.check(convert(x), 1) == g.check(x, 1)
    g.observe(convert(x), 1, 3.0)
    after = gpubound.Guardrail(MODEL, delta=[0.05, 0.5])
    after.observe(x, 1, 3.0)
    assert g.estimates(x).array.tolist() == after.estimates(x).array.tolist()
