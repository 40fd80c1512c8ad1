//! Analytic bounds the simulator's measurements are checked against (design brief, "The
//! theory the simulator must agree with").

/// TTL cache, Poisson arrivals, infinite capacity (Jung, Berger, Balakrishnan 2003): object i
/// with rate λ_i and TTL T counted from fetch hits with probability λ_iT/(1+λ_iT). Returns the
/// request-weighted hit ratio (0 without requests).
pub fn ttl_hit_ratio(rates: &[f64], ttl_s: f64) -> f64 {
    let total: f64 = rates.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    rates
        .iter()
        .map(|&l| l * (l * ttl_s) / (1.0 + l * ttl_s))
        .sum::<f64>()
        / total
}

/// LRU with capacity C (Che's approximation): h_i = 1 − exp(−λ_i t_C) where
/// Σ s_i(1 − exp(−λ_i t_C)) = C; request-weighted. Everything fitting gives 1.
pub fn che_hit_ratio(rates: &[f64], sizes: &[f64], capacity: f64) -> f64 {
    let total: f64 = rates.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let occupied = |t: f64| -> f64 {
        rates
            .iter()
            .zip(sizes)
            .map(|(l, s)| s * (1.0 - (-l * t).exp()))
            .sum()
    };
    if sizes.iter().sum::<f64>() <= capacity {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    while occupied(hi) < capacity && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if occupied(mid) < capacity {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = (lo + hi) / 2.0;
    rates.iter().map(|l| l * (1.0 - (-l * t).exp())).sum::<f64>() / total
}
