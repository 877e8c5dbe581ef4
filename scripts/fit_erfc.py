"""Coefficients of the vectorised erfc in src/model/normal_tail.rs.

erfc(x) = e^{-x²} · g(t) / (1 + √π·x) for x ≥ 0, where
g = erfcx(x)·(1 + √π·x) is smooth and near 1 on all of [0, ∞), and
t = (x − K)/(x + K) maps [0, ∞) onto [−1, 1). g is expanded in Chebyshev
polynomials of t (computed here at 40 digits with mpmath); the terms kept are
those above 1e-18, so the series itself is exact to f64 precision.

Run: python3 scripts/fit_erfc.py   (prints the Rust constant)
"""
import mpmath as mp

mp.mp.dps = 40
K = mp.mpf(3)
N = 120  # nodes: far more than the terms kept


def g(t):
    if t == 1:
        return mp.mpf(1)  # erfcx(x) ~ 1/(√π x)
    x = K * (1 + t) / (1 - t)
    return mp.erfc(x) * mp.exp(x * x) * (1 + mp.sqrt(mp.pi) * x)


nodes = [mp.cos(mp.pi * (j + mp.mpf(1) / 2) / N) for j in range(N)]
values = [g(t) for t in nodes]
c = [
    2 * mp.fsum(values[j] * mp.cos(mp.pi * k * (j + mp.mpf(1) / 2) / N) for j in range(N)) / N
    for k in range(N)
]
c[0] /= 2  # so that g(t) = Σ c_k T_k(t)
kept = max(k for k in range(N) if abs(c[k]) > 1e-18) + 1
print(f"const ERFCX_CHEBYSHEV: [f64; {kept}] = [")
for v in c[:kept]:
    print(f"    {mp.nstr(v, 20, min_fixed=0, max_fixed=0)},")
print("];")
