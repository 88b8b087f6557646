"""Research tools the pipeline never imports: the study runner, ablation rows,
benchmarks, the analyses of the two-phase paper's section 4.4 and the gate profile."""
