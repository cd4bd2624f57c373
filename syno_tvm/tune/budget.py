"""The names of the tuning budget policies (:func:`syno_tvm.tune.metaschedule.tune` implements them), in a module
without TVM imports so that the CLI can offer them without loading TVM."""

POLICIES = ("uniform", "share")
DEFAULT_POLICY = "uniform"
