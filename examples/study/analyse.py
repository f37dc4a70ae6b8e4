"""A mixed model on fa-collect's long table: does the condition move a measure, with a
random intercept per participant?  (statsmodels' MixedLM; in R: lme4::lmer(delta ~
condition + (1 | participant)).)  Usage: python analyse.py long.parquet [MEASURE]"""

import sys
import warnings

import pandas as pd
import statsmodels.formula.api as smf


def main(path: str, measure: str = "valence") -> None:
    table = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    # The participant's own face, in fixed windows, one measure; delta: the value minus the
    # person's own median over all their videos (fa-collect --normalize person).
    rows = table[
        (table.role == "participant") & (table.segment_type == "window") & (table.measure == measure)
    ]
    rows = rows.dropna(subset=["delta"])
    print(f"{measure}: {len(rows)} windows of {rows.participant.nunique()} participants")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny example data: a boundary fit warns about convergence
        fit = smf.mixedlm("delta ~ condition", rows, groups=rows["participant"]).fit()
    print(fit.summary())
    effect = [name for name in fit.params.index if name.startswith("condition")][0]
    print(f"effect {effect}: {fit.params[effect]:.6g} (p = {fit.pvalues[effect]:.3g})")


if __name__ == "__main__":
    main(*sys.argv[1:])
