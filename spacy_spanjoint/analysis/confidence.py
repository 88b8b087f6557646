"""95% confidence intervals for differences between training runs over seeds.

`paired_difference` compares two rows of a study seed by seed (the same seed
gives both runs the same data order and initial draws), `mean_interval` gives
the interval of one row's mean. Both use Student's t with n - 1 degrees of
freedom, so they widen honestly at the three to five seeds a CPU allows.
"""
import math
import statistics
from typing import Dict, List, Optional

# two-sided 95% quantiles of Student's t for 1 to 30 degrees of freedom
T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def t_quantile(degrees_of_freedom: int) -> float:
    """The two-sided 95% quantile of Student's t (the normal's 1.96 above 30 degrees of freedom)."""
    if degrees_of_freedom < 1:
        raise ValueError("a confidence interval needs at least two values")
    return T_975[degrees_of_freedom - 1] if degrees_of_freedom <= len(T_975) else 1.96


def mean_interval(values: List[float]) -> Optional[Dict[str, float]]:
    """Mean and 95% interval of the mean (None for fewer than two values)."""
    if len(values) < 2:
        return None
    mean = statistics.mean(values)
    half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": round(mean, 2), "low": round(mean - half, 2), "high": round(mean + half, 2), "n": len(values)}


def paired_difference(row: Dict[int, float], base: Dict[int, float]) -> Optional[Dict[str, float]]:
    """Mean of row - base over the seeds both have, with its 95% interval (None below two shared seeds)."""
    seeds = sorted(set(row) & set(base))
    return mean_interval([row[seed] - base[seed] for seed in seeds])
