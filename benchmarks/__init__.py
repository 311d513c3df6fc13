"""execrl benchmarks: HumanEval, MBPP, APPS and synth, loaded into one `Problem` record."""
