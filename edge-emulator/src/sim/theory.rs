//! Analytic hit-ratio bounds a correct cache can approach but not beat, to set beside what the
//! simulator measured.
//!
//! All functions take per-object request rates λᵢ (requests per second, under the Independent
//! Reference Model: each object's requests form an independent Poisson process). A rate that is
//! negative, NaN or infinite describes no workload, so it counts as zero (the object is never
//! requested) rather than poisoning the sums; likewise a negative or NaN TTL, size or capacity
//! counts as zero. None of these functions panic.
//!
//! - TTL caches: Jung, Berger, Balakrishnan, "Modeling TTL-based Internet caches", INFOCOM 2003.
//! - LRU caches: Che, Tung, Wang, "Hierarchical Web caching systems: modeling, design and
//!   experimental results", IEEE JSAC 2002 (the "characteristic time" approximation).

/// Largest catalogue [`zipf_probabilities`] builds: 80 MB of probabilities. Larger requests
/// are clamped to this many objects, so callers that take `n` from users should reject larger
/// values first.
pub const MAX_ZIPF_OBJECTS: usize = 10_000_000;

/// Bisection stops once the bracket is this small relative to its upper end; ~1e-12 is far
/// below any difference a simulation could measure.
const CHE_RELATIVE_TOLERANCE: f64 = 1e-12;
/// Enough halvings to shrink any f64 bracket to the tolerance above.
const CHE_MAX_BISECTIONS: usize = 2_200;

/// The rate as the formulas need it: invalid rates describe no requests.
fn usable(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

/// A TTL, size or capacity: NaN and negatives count as zero; +∞ is meaningful (never expires,
/// never fills) and is kept.
fn non_negative(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// Probability that a request for an object with rate `rate` hits a TTL cache whose entries live
/// `ttl_s` seconds from fetch: λT / (1 + λT).
fn ttl_hit_probability(rate: f64, ttl_s: f64) -> f64 {
    // Written as 1 − 1/(1 + λT) so that T = +∞ gives 1 rather than ∞/∞.
    let lt = rate * ttl_s;
    if lt == 0.0 {
        0.0
    } else {
        1.0 - 1.0 / (1.0 + lt)
    }
}

/// Request-weighted hit ratio of a TTL cache with infinite capacity whose entries expire `ttl_s`
/// seconds after they were fetched (Jung et al. 2003): Σ λᵢ·hᵢ / Σ λᵢ with hᵢ = λᵢT/(1+λᵢT).
///
/// Returns 0 when no object has a positive rate.
pub fn ttl_hit_ratio(rates: &[f64], ttl_s: f64) -> f64 {
    let ttl_s = non_negative(ttl_s);
    let (mut hits, mut total) = (0.0, 0.0);
    for &rate in rates {
        let rate = usable(rate);
        hits += rate * ttl_hit_probability(rate, ttl_s);
        total += rate;
    }
    if total > 0.0 {
        hits / total
    } else {
        0.0
    }
}

/// Origin request rate of that TTL cache, Σ λᵢ/(1+λᵢT), requests per second: the floor no
/// correct cache with this TTL beats (coalescing only removes concurrent duplicates of these
/// fetches; stale-while-revalidate moves them off the client's path but still makes them).
pub fn ttl_origin_rate(rates: &[f64], ttl_s: f64) -> f64 {
    let ttl_s = non_negative(ttl_s);
    rates
        .iter()
        .map(|&rate| {
            let rate = usable(rate);
            rate * (1.0 - ttl_hit_probability(rate, ttl_s))
        })
        .sum()
}

/// Expected occupancy Σ sᵢ(1 − exp(−λᵢt)) of an LRU cache at characteristic time `t`.
fn che_occupancy(rates: &[f64], sizes: &[f64], t: f64) -> f64 {
    rates
        .iter()
        .zip(sizes)
        // −expm1(−x) is 1 − e^(−x) without cancellation for small x.
        .map(|(&rate, &size)| non_negative(size) * -(-usable(rate) * t).exp_m1())
        .sum()
}

/// The Che characteristic time t_C of an LRU cache of `capacity`: the t solving
/// Σ sᵢ(1 − exp(−λᵢt)) = C. Object i is in the cache with probability 1 − exp(−λᵢt_C).
///
/// `sizes[i]` is object i's size in the unit `capacity` is in: all 1.0 for a capacity in
/// objects, bytes for a capacity in bytes. `rates` and `sizes` are paired by index; entries
/// beyond the shorter slice are ignored.
///
/// Returns `None` when every requested object fits at once (Σ sᵢ ≤ C over objects with a
/// positive rate): then nothing is ever evicted and the hit ratio is the infinite-capacity one.
/// Returns `Some(0.0)` for a capacity of zero.
pub fn che_characteristic_time(rates: &[f64], sizes: &[f64], capacity: f64) -> Option<f64> {
    let capacity = non_negative(capacity);
    let requested_size: f64 = rates
        .iter()
        .zip(sizes)
        .filter(|(&rate, _)| usable(rate) > 0.0)
        .map(|(_, &size)| non_negative(size))
        .sum();
    if requested_size <= capacity {
        return None;
    }
    if capacity == 0.0 {
        return Some(0.0);
    }
    // Occupancy rises from 0 at t = 0 towards `requested_size` > C, so a root exists. Grow the
    // bracket until it holds it; if rounding keeps occupancy just under C forever, the largest
    // finite t is the best answer there is.
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while che_occupancy(rates, sizes, hi) < capacity {
        lo = hi;
        hi *= 2.0;
        if !hi.is_finite() {
            return Some(f64::MAX);
        }
    }
    for _ in 0..CHE_MAX_BISECTIONS {
        if hi - lo <= hi * CHE_RELATIVE_TOLERANCE {
            break;
        }
        let mid = lo + (hi - lo) / 2.0;
        if che_occupancy(rates, sizes, mid) < capacity {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo + (hi - lo) / 2.0)
}

/// Request-weighted LRU hit ratio by the Che approximation: Σ λᵢ(1 − exp(−λᵢt_C)) / Σ λᵢ.
///
/// When everything fits (see [`che_characteristic_time`]) every object stays cached after its
/// first request, so the steady-state hit ratio is 1 (0 when nothing is requested). Combine with
/// a TTL by taking the smaller of this and [`ttl_hit_ratio`] as a bound.
pub fn che_hit_ratio(rates: &[f64], sizes: &[f64], capacity: f64) -> f64 {
    let total: f64 = rates.iter().map(|&rate| usable(rate)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let Some(t) = che_characteristic_time(rates, sizes, capacity) else {
        return 1.0;
    };
    // Rates without a paired size are outside the model: they count in the total, as misses.
    let hits: f64 = rates
        .iter()
        .zip(sizes)
        .map(|(&rate, _)| {
            let rate = usable(rate);
            rate * -(-rate * t).exp_m1()
        })
        .sum();
    hits / total
}

/// Upper bound on the request offload (1 − origin requests / client requests) of an upper tier
/// with TTL `ttl_s` that all of k PoPs send their misses to: the TTL hit ratio of the summed
/// per-object rates, because the upper tier sees (at best) the aggregate stream as one cache
/// would. `per_pop_rates[p][i]` is PoP p's rate for object i; PoPs with shorter vectors
/// request the missing objects at rate 0.
///
/// This bounds the whole hierarchy's offload, not the upper tier's hit ratio on its own
/// (thinned) miss stream, which is lower.
pub fn tiered_upper_bound(per_pop_rates: &[Vec<f64>], ttl_s: f64) -> f64 {
    let objects = per_pop_rates.iter().map(Vec::len).max().unwrap_or(0);
    let mut summed = vec![0.0; objects];
    for pop in per_pop_rates {
        for (total, &rate) in summed.iter_mut().zip(pop) {
            *total += usable(rate);
        }
    }
    ttl_hit_ratio(&summed, ttl_s)
}

/// Zipf popularity over `n` objects: pᵢ ∝ 1/iᵅ for i = 1..=n, normalised to sum to 1, most
/// popular first. `n` is clamped to [`MAX_ZIPF_OBJECTS`]; `n = 0` gives an empty vector.
/// `alpha` = 0 is uniform; NaN counts as 0 and |α| is clamped to 1000 (beyond it all the mass is
/// on one object at f64 precision anyway).
pub fn zipf_probabilities(n: usize, alpha: f64) -> Vec<f64> {
    let n = n.min(MAX_ZIPF_OBJECTS);
    let alpha = if alpha.is_nan() {
        0.0
    } else {
        alpha.clamp(-1000.0, 1000.0)
    };
    // Weights relative to the heaviest object (rank 1 for α ≥ 0, rank n for α < 0) lie in
    // (0, 1], so they neither overflow nor all underflow to zero.
    let heaviest_rank = if alpha >= 0.0 { 1.0 } else { n as f64 };
    let ln_heaviest = heaviest_rank.ln();
    let mut weights: Vec<f64> = (1..=n)
        .map(|rank| (-alpha * ((rank as f64).ln() - ln_heaviest)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    if total > 0.0 {
        for w in &mut weights {
            *w /= total;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    // --- TTL (Jung et al.) ---

    #[test]
    fn ttl_single_object_is_lambda_t_over_one_plus_lambda_t() {
        assert!(close(ttl_hit_ratio(&[1.0], 1.0), 0.5, 1e-12));
        assert!(close(ttl_hit_ratio(&[2.0], 4.0), 8.0 / 9.0, 1e-12));
        assert!(close(ttl_origin_rate(&[2.0], 4.0), 2.0 / 9.0, 1e-12));
    }

    #[test]
    fn ttl_is_request_weighted_over_objects() {
        // h = 1/2 and 3/4; weighted (1·½ + 3·¾) / 4.
        assert!(close(ttl_hit_ratio(&[1.0, 3.0], 1.0), 0.6875, 1e-12));
        assert!(close(ttl_origin_rate(&[1.0, 3.0], 1.0), 1.25, 1e-12));
    }

    #[test]
    fn ttl_hit_ratio_and_origin_rate_agree() {
        let rates = zipf_probabilities(500, 0.9)
            .iter()
            .map(|p| p * 200.0)
            .collect::<Vec<_>>();
        let total: f64 = rates.iter().sum();
        let h = ttl_hit_ratio(&rates, 30.0);
        assert!(close(1.0 - ttl_origin_rate(&rates, 30.0) / total, h, 1e-9));
    }

    #[test]
    fn ttl_rises_with_ttl_and_with_skew() {
        let rates: Vec<f64> = zipf_probabilities(1000, 0.8)
            .iter()
            .map(|p| p * 100.0)
            .collect();
        let mut previous = -1.0;
        for ttl in [0.0, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0] {
            let h = ttl_hit_ratio(&rates, ttl);
            assert!(h > previous, "ttl {ttl}: {h} <= {previous}");
            previous = h;
        }
        let mut previous = -1.0;
        for alpha in [0.0, 0.4, 0.8, 1.0, 1.2, 2.0] {
            let rates: Vec<f64> = zipf_probabilities(1000, alpha)
                .iter()
                .map(|p| p * 100.0)
                .collect();
            let h = ttl_hit_ratio(&rates, 10.0);
            assert!(h > previous, "alpha {alpha}: {h} <= {previous}");
            previous = h;
        }
    }

    #[test]
    fn ttl_edge_cases() {
        assert_eq!(ttl_hit_ratio(&[], 10.0), 0.0);
        assert_eq!(ttl_hit_ratio(&[0.0, 0.0], 10.0), 0.0);
        assert_eq!(ttl_hit_ratio(&[1.0], 0.0), 0.0);
        assert_eq!(ttl_hit_ratio(&[1.0], f64::INFINITY), 1.0);
        assert_eq!(ttl_origin_rate(&[1.0], f64::INFINITY), 0.0);
        assert_eq!(ttl_origin_rate(&[], 1.0), 0.0);
        assert_eq!(ttl_origin_rate(&[3.0], 0.0), 3.0);
        // Invalid inputs describe nothing; they do not produce NaN.
        for bad in [f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(close(ttl_hit_ratio(&[1.0, bad], 1.0), 0.5, 1e-12));
            assert!(close(ttl_origin_rate(&[1.0, bad], 1.0), 0.5, 1e-12));
        }
        assert_eq!(ttl_hit_ratio(&[1.0], f64::NAN), 0.0);
        assert_eq!(ttl_hit_ratio(&[1.0], -5.0), 0.0);
    }

    // --- Che (LRU) ---

    #[test]
    fn che_uniform_popularity_hits_capacity_over_catalogue() {
        // Equal rates: n(1 − e^(−λt)) = C, so every object hits with probability C/n.
        let rates = vec![2.0; 100];
        let ones = vec![1.0; 100];
        assert!(close(che_hit_ratio(&rates, &ones, 25.0), 0.25, 1e-9));
        let t = che_characteristic_time(&rates, &ones, 25.0).unwrap();
        assert!(close(t, -(0.75_f64).ln() / 2.0, 1e-9));
        // Same in bytes: 1000-byte objects, 25 000-byte cache.
        let bytes = vec![1000.0; 100];
        assert!(close(che_hit_ratio(&rates, &bytes, 25_000.0), 0.25, 1e-9));
    }

    #[test]
    fn che_when_everything_fits() {
        let rates = [1.0, 2.0, 0.0];
        let sizes = [10.0, 10.0, 1e9]; // The unrequested object never occupies the cache.
        assert_eq!(che_characteristic_time(&rates, &sizes, 20.0), None);
        assert_eq!(che_hit_ratio(&rates, &sizes, 20.0), 1.0);
        assert_eq!(che_hit_ratio(&rates, &sizes, f64::INFINITY), 1.0);
    }

    #[test]
    fn che_edge_cases() {
        assert_eq!(che_characteristic_time(&[], &[], 10.0), None);
        assert_eq!(che_hit_ratio(&[], &[], 10.0), 0.0);
        assert_eq!(che_hit_ratio(&[0.0, 0.0], &[1.0, 1.0], 0.0), 0.0);
        assert_eq!(
            che_characteristic_time(&[1.0, 1.0], &[1.0, 1.0], 0.0),
            Some(0.0)
        );
        assert_eq!(che_hit_ratio(&[1.0, 1.0], &[1.0, 1.0], 0.0), 0.0);
        assert_eq!(che_hit_ratio(&[1.0, 1.0], &[1.0, 1.0], f64::NAN), 0.0);
        assert_eq!(che_hit_ratio(&[1.0, 1.0], &[1.0, 1.0], -3.0), 0.0);
        // Mismatched lengths: only paired objects count; unpaired rates are misses.
        let h = che_hit_ratio(&[1.0, 1.0, 1.0], &[1.0, 1.0], 1.0);
        assert!(h.is_finite() && (0.0..=1.0).contains(&h));
        // Extreme but valid rates stay finite.
        let t = che_characteristic_time(&[1e300, 1e-300], &[1.0, 1.0], 1.5).unwrap();
        assert!(t.is_finite());
        let h = che_hit_ratio(&[1e-300, 1e-300], &[1.0, 1.0], 1.0);
        assert!(close(h, 0.5, 1e-6), "{h}");
    }

    #[test]
    fn che_rises_with_capacity_and_skew() {
        let rates: Vec<f64> = zipf_probabilities(1000, 0.8).to_vec();
        let ones = vec![1.0; rates.len()];
        let mut previous = -1.0;
        for capacity in [0.0, 1.0, 10.0, 100.0, 500.0, 999.0] {
            let h = che_hit_ratio(&rates, &ones, capacity);
            assert!(h > previous, "C {capacity}: {h} <= {previous}");
            previous = h;
        }
        let mut previous = -1.0;
        for alpha in [0.0, 0.5, 0.8, 1.1] {
            let h = che_hit_ratio(&zipf_probabilities(1000, alpha), &ones, 100.0);
            assert!(h > previous, "alpha {alpha}: {h} <= {previous}");
            previous = h;
        }
    }

    /// Request-weighted hit ratio of a real LRU cache of `capacity` objects under the
    /// Independent Reference Model with popularity `probabilities`.
    fn simulate_lru(probabilities: &[f64], capacity: usize, requests: usize, seed: u64) -> f64 {
        let mut cumulative = Vec::with_capacity(probabilities.len());
        let mut running = 0.0;
        for p in probabilities {
            running += p;
            cumulative.push(running);
        }
        let mut rng = fastrand::Rng::with_seed(seed);
        // last_used[object] = Some(tick) while cached; by_recency orders cached objects by tick.
        let mut last_used: Vec<Option<u64>> = vec![None; probabilities.len()];
        let mut by_recency: BTreeMap<u64, usize> = BTreeMap::new();
        let warm_up = requests / 5;
        let (mut hits, mut counted) = (0_u64, 0_u64);
        for tick in 0..(warm_up + requests) as u64 {
            let u = rng.f64() * running;
            let object = cumulative
                .partition_point(|&c| c < u)
                .min(probabilities.len() - 1);
            let hit = if let Some(previous) = last_used[object] {
                by_recency.remove(&previous);
                true
            } else {
                if by_recency.len() == capacity {
                    if let Some((_, evicted)) = by_recency.pop_first() {
                        last_used[evicted] = None;
                    }
                }
                false
            };
            by_recency.insert(tick, object);
            last_used[object] = Some(tick);
            if tick >= warm_up as u64 {
                counted += 1;
                hits += u64::from(hit);
            }
        }
        hits as f64 / counted as f64
    }

    #[test]
    fn che_agrees_with_a_simulated_lru_cache() {
        for (n, alpha, capacity, seed) in [
            (1000, 0.8, 100, 7),
            (1000, 1.0, 50, 11),
            (2000, 0.6, 300, 13),
        ] {
            let probabilities = zipf_probabilities(n, alpha);
            let predicted = che_hit_ratio(&probabilities, &vec![1.0; n], capacity as f64);
            let simulated = simulate_lru(&probabilities, capacity, 300_000, seed);
            assert!(
                close(predicted, simulated, 0.02),
                "n={n} α={alpha} C={capacity}: Che {predicted:.4}, LRU {simulated:.4}"
            );
        }
    }

    /// Hit ratio of a TTL cache (entries live `ttl_s` from fetch) fed Poisson requests.
    fn simulate_ttl(rates: &[f64], ttl_s: f64, duration_s: f64, seed: u64) -> f64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (mut hits, mut requests) = (0_u64, 0_u64);
        for &rate in rates {
            let (mut now, mut expires) = (0.0, f64::NEG_INFINITY);
            loop {
                // Exponential inter-arrival time; 1 − u avoids ln(0).
                now += -(1.0 - rng.f64()).ln() / rate;
                if now > duration_s {
                    break;
                }
                requests += 1;
                if now < expires {
                    hits += 1;
                } else {
                    expires = now + ttl_s;
                }
            }
        }
        hits as f64 / requests as f64
    }

    #[test]
    fn ttl_agrees_with_a_simulated_ttl_cache() {
        let rates: Vec<f64> = zipf_probabilities(200, 0.9)
            .iter()
            .map(|p| p * 50.0)
            .collect();
        for (ttl, seed) in [(1.0, 3), (10.0, 5), (60.0, 9)] {
            let predicted = ttl_hit_ratio(&rates, ttl);
            let simulated = simulate_ttl(&rates, ttl, 5_000.0, seed);
            assert!(
                close(predicted, simulated, 0.01),
                "T={ttl}: theory {predicted:.4}, simulated {simulated:.4}"
            );
        }
    }

    // --- tiers ---

    #[test]
    fn tiered_bound_is_the_single_cache_bound_of_the_summed_rates() {
        let pops = vec![vec![1.0, 0.5], vec![1.0, 0.5, 2.0], vec![]];
        assert!(close(
            tiered_upper_bound(&pops, 10.0),
            ttl_hit_ratio(&[2.0, 1.0, 2.0], 10.0),
            1e-12
        ));
        // Aggregating PoPs can only raise the bound above any single PoP's.
        let one = vec![0.2, 0.1, 0.05];
        let bound = tiered_upper_bound(&[one.clone(), one.clone(), one.clone()], 30.0);
        assert!(bound > ttl_hit_ratio(&one, 30.0));
        assert_eq!(tiered_upper_bound(&[], 30.0), 0.0);
        assert_eq!(tiered_upper_bound(&[vec![f64::NAN]], 30.0), 0.0);
    }

    // --- Zipf ---

    #[test]
    fn zipf_is_normalised_and_ordered() {
        let p = zipf_probabilities(4, 1.0);
        let h4 = 1.0 + 0.5 + 1.0 / 3.0 + 0.25;
        for (i, &pi) in p.iter().enumerate() {
            assert!(close(pi, 1.0 / ((i + 1) as f64 * h4), 1e-12));
        }
        for alpha in [
            0.0,
            0.5,
            0.99,
            1.0,
            2.5,
            -0.5,
            f64::NAN,
            f64::INFINITY,
            -1e9,
        ] {
            let p = zipf_probabilities(1000, alpha);
            assert_eq!(p.len(), 1000);
            assert!(close(p.iter().sum::<f64>(), 1.0, 1e-9), "alpha {alpha}");
            assert!(
                p.iter().all(|x| x.is_finite() && *x >= 0.0),
                "alpha {alpha}"
            );
        }
        let uniform = zipf_probabilities(10, 0.0);
        assert!(uniform.iter().all(|&x| close(x, 0.1, 1e-12)));
        assert!(zipf_probabilities(0, 1.0).is_empty());
        assert_eq!(zipf_probabilities(1, 3.0), vec![1.0]);
    }
}
