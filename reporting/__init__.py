"""The report (Tables 1-4 next to the published numbers, findings, claims, figures, MLflow) and
the user study kit of Table 2. `python -m pipelines.report` runs it as a DVC stage.

    layout       which rows (methods) and columns (metrics) each table has; dataset titles
    results      the published numbers and the evaluate JSONs, seeds pooled
    tables       cells, tables, markdown and CSV
    findings     summary.md: does the paper's ordering hold?
    claims       claims.md: the paper's claims of sections 4.2-4.4, checked
    floor        does each method beat copying its input frame (paired, MSE)?
    figures      the seaborn figures; qualitative: the Figure 6/8-style grids
    budget       what each train stage spent
    outputs      the whole report on disk; runs: the report in MLflow and its key
    gate         the regression gates (`python -m pipelines.check`): smoke baseline, published numbers
    profile_run  a larger profile's graph and collected numbers (`python -m pipelines.run_profile`)
    study/       the user study: draw, rating page, answer store, tally (Table 2)
"""
