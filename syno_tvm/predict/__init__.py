"""Latency prediction for synthesized operators: a dataset measured with the project's own tuning
(:mod:`.dataset`, made by :mod:`.collect`), features of an operator at a binding (:mod:`.features`), and rankers
that predict tuned latency from them (:mod:`.predictor`), which the search uses as its cheap latency evaluator."""
