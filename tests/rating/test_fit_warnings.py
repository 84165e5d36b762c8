"""A fit that does not converge is a warning in the analysis report (and its JSON), never swallowed."""

from __future__ import annotations

import json
import warnings

import pytest
import statsmodels.api as sm
from scipy import optimize
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from vlmlab.rating.analysis import analyze_runs
from vlmlab.rating.config import RatingConfig
from vlmlab.rating.run import run_study
from rating_helpers import ScriptedRater, make_faces


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("warnings")
    ratings, truth = make_faces(tmp / "faces", n_per_cell=3, raters=3)
    config = RatingConfig.model_validate({"out": str(tmp / "out"), "data": {"ratings": str(ratings)}, "models": [{"name": "s", "ref": "s"}],
                                          "conditions": {"modes": ["context-carry"], "temperatures": [1.0], "repeats": 2}})
    return run_study(config, backend_factory=lambda c: ScriptedRater(truth, fp_a=0.1, fp_b=0.5)), tmp


def test_reml_that_does_not_converge_is_a_report_warning(study, monkeypatch):
    folders, tmp = study
    real = optimize.minimize

    def stalls(*args, **kwargs):  # the optimiser gives up (e.g. its iteration limit)
        result = real(*args, **kwargs)
        result.success, result.message = False, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
        return result

    monkeypatch.setattr(optimize, "minimize", stalls)
    analyze_runs(folders, tmp / "reml", n_boot=50)
    fit = json.loads((tmp / "reml" / "analysis.json").read_text())["mixed_models"]["human"]["valence"]
    assert fit["converged"] is False
    message = "REML optimisation did not converge: STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
    assert message in fit["warnings"]
    report = (tmp / "reml" / "report.md").read_text()
    assert f"Warning: human raters: valence: {message}" in report
    assert f"Warning: model s/default/context-carry: valence: {message}" in report
    components = next(line for line in report.splitlines() if line.startswith("| human raters: valence |") and "(1\\|rater)" in line)
    assert components.rstrip().endswith("| NO |")  # the variance-components table says so too


def test_statsmodels_convergence_warning_is_a_report_warning(study, monkeypatch):
    folders, tmp = study
    real = sm.GEE.fit

    def warns(self, *args, **kwargs):
        warnings.warn("Iteration limit reached prior to convergence", ConvergenceWarning)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(sm.GEE, "fit", warns)
    analyze_runs(folders, tmp / "gee", n_boot=50)
    # make_faces' humans always agree; the scripted model calls neutral faces angry (A 10%, B 50%): its GEE has events
    fit = json.loads((tmp / "gee" / "analysis.json").read_text())["mixed_models"]["models"]["s/default/context-carry"]["labelled_angry"]
    assert "ConvergenceWarning: Iteration limit reached prior to convergence" in fit["warnings"]
    report = (tmp / "gee" / "report.md").read_text()
    assert "Warning: model s/default/context-carry: labelled_angry: ConvergenceWarning: Iteration limit reached prior to convergence" in report
