//! Textbook formulas the engine is validated against: Palm's theorem for single sites,
//! time-based service, and METRIC / VARI-METRIC for two echelons (see DOMAIN.md).

/// P(X = x) for X ~ Poisson(mean), by the stable recursion from 0.
pub fn poisson_pmf(mean: f64, x: u64) -> f64 {
    let mut probability = (-mean).exp();
    for k in 1..=x {
        probability *= mean / k as f64;
    }
    probability
}

/// P(X <= x) for X ~ Poisson(mean).
pub fn poisson_cdf(mean: f64, x: i64) -> f64 {
    if x < 0 {
        return 0.0;
    }
    let mut probability = (-mean).exp();
    let mut total = probability;
    for k in 1..=x {
        probability *= mean / k as f64;
        total += probability;
    }
    total.min(1.0)
}

/// Expected backorders E[(X - s)+] for a pipeline with probabilities `pmf(x)`, x = 0..s-1,
/// and mean `mean`: (mean - s) + sum_{x < s} (s - x) P(X = x).
fn backorders_from_pmf(mean: f64, stock: u64, pmf: impl Fn(u64) -> f64) -> f64 {
    let below: f64 = (0..stock).map(|x| (stock - x) as f64 * pmf(x)).sum();
    (mean - stock as f64 + below).max(0.0)
}

/// EBO(s) for a Poisson pipeline with the given mean (Palm's theorem).
pub fn poisson_backorders(pipeline_mean: f64, stock: u64) -> f64 {
    backorders_from_pmf(pipeline_mean, stock, |x| poisson_pmf(pipeline_mean, x))
}

/// VBO(s) = E[((X - s)+)^2] - EBO(s)^2 for a Poisson pipeline.
pub fn poisson_backorder_variance(pipeline_mean: f64, stock: u64) -> f64 {
    let ebo = poisson_backorders(pipeline_mean, stock);
    // E[((X-s)+)^2] = E[(X-s)^2] - sum_{x<s} (x-s)^2 P(x).
    let s = stock as f64;
    let second = pipeline_mean + (pipeline_mean - s).powi(2);
    let below: f64 = (0..stock)
        .map(|x| (x as f64 - s).powi(2) * poisson_pmf(pipeline_mean, x))
        .sum();
    (second - below - ebo * ebo).max(0.0)
}

/// Fill rate of base stock s under Poisson demand: P(X <= s - 1).
pub fn poisson_fill_rate(pipeline_mean: f64, stock: u64) -> f64 {
    poisson_cdf(pipeline_mean, stock as i64 - 1)
}

/// P(wait <= t) under one-for-one replenishment with Poisson demand `rate_per_day`,
/// deterministic lead time `lead_time_days` and FIFO: P(Poisson(rate (L - t)) <= s - 1) for
/// t < L, and 1 for t >= L.
pub fn time_based_service(
    rate_per_day: f64,
    lead_time_days: f64,
    stock: u64,
    wait_days: f64,
) -> f64 {
    if wait_days >= lead_time_days {
        return 1.0;
    }
    poisson_cdf(
        rate_per_day * (lead_time_days - wait_days),
        stock as i64 - 1,
    )
}

/// Fill rate of a continuous-review (R, Q) policy under unit Poisson demand with lead-time
/// demand mean `lead_time_demand`: the inventory position is uniform on R+1..R+Q, so the fill
/// rate is (1/Q) sum_{y = R+1}^{R+Q} P(D_L <= y - 1) (Hadley and Whitin). With unit demand an
/// (s, S) policy is (R, Q) with R = s and Q = S - s.
pub fn reorder_point_quantity_fill_rate(
    lead_time_demand: f64,
    reorder_point: i64,
    quantity: u64,
) -> f64 {
    let positions = (reorder_point + 1)..=(reorder_point + quantity as i64);
    positions
        .map(|position| poisson_cdf(lead_time_demand, position - 1))
        .sum::<f64>()
        / quantity as f64
}

/// Expected backorders of a continuous-review (R, Q) policy under unit Poisson demand:
/// (1/Q) sum_{y = R+1}^{R+Q} E[(D_L - y)+].
pub fn reorder_point_quantity_backorders(
    lead_time_demand: f64,
    reorder_point: i64,
    quantity: u64,
) -> f64 {
    let positions = (reorder_point + 1)..=(reorder_point + quantity as i64);
    positions
        .map(|position| {
            if position <= 0 {
                lead_time_demand - position as f64
            } else {
                poisson_backorders(lead_time_demand, position as u64)
            }
        })
        .sum::<f64>()
        / quantity as f64
}

/// EBO(s) for a negative binomial pipeline fitted to a mean and variance (VARI-METRIC);
/// Poisson when the variance does not exceed the mean.
pub fn negative_binomial_backorders(mean: f64, variance: f64, stock: u64) -> f64 {
    if variance <= mean * (1.0 + 1e-12) {
        return poisson_backorders(mean, stock);
    }
    let p = mean / variance;
    let r = mean * mean / (variance - mean);
    let mut pmf = Vec::with_capacity(stock as usize);
    let mut probability = p.powf(r);
    for x in 0..stock {
        pmf.push(probability);
        probability *= (x as f64 + r) / (x as f64 + 1.0) * (1.0 - p);
    }
    backorders_from_pmf(mean, stock, |x| pmf[x as usize])
}

/// One base of a two-echelon repairable network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricBase {
    /// Demand per day.
    pub demand_per_day: f64,
    /// Probability of local repair r.
    pub local_repair_probability: f64,
    /// Local repair time T in days.
    pub local_repair_days: f64,
    /// Order-and-ship time O from the depot in days.
    pub order_and_ship_days: f64,
    /// Base stock.
    pub stock: u64,
}

/// Total expected backorders over the bases, by METRIC (Poisson base pipelines) if
/// `vari_metric` is false, else by VARI-METRIC (negative binomial), given the depot
/// turnaround in days and depot stock.
pub fn metric_total_backorders(
    bases: &[MetricBase],
    depot_repair_days: f64,
    depot_stock: u64,
    vari_metric: bool,
) -> f64 {
    let depot_demand: f64 = bases
        .iter()
        .map(|b| b.demand_per_day * (1.0 - b.local_repair_probability))
        .sum();
    let depot_pipeline = depot_demand * depot_repair_days;
    let depot_ebo = poisson_backorders(depot_pipeline, depot_stock);
    let depot_vbo = poisson_backorder_variance(depot_pipeline, depot_stock);
    let delay = if depot_demand > 0.0 {
        depot_ebo / depot_demand
    } else {
        0.0
    };
    bases
        .iter()
        .map(|base| {
            let r = base.local_repair_probability;
            let lambda = base.demand_per_day;
            let mean = lambda
                * (r * base.local_repair_days + (1.0 - r) * (base.order_and_ship_days + delay));
            if vari_metric && depot_demand > 0.0 {
                let share = lambda * (1.0 - r) / depot_demand;
                let variance = mean + share * share * (depot_vbo - depot_ebo);
                negative_binomial_backorders(mean, variance, base.stock)
            } else {
                poisson_backorders(mean, base.stock)
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_based_service_matches_oracle() {
        // ORACLES.md: Poisson 2/day, L = 3 days, S = 6 -> 0.4457, 0.7851, 0.9834, 1.
        let expected = [0.4457, 0.7851, 0.9834, 1.0];
        for (t, want) in expected.iter().enumerate() {
            let got = time_based_service(2.0, 3.0, 6, t as f64);
            assert!((got - want).abs() < 5e-5, "t = {t}: {got}");
        }
    }

    #[test]
    fn depot_backorders_match_sherbrooke_chapter_three() {
        // ORACLES.md: depot pipeline 2.348768, EBO for s0 = 0..5.
        let expected = [2.3488, 1.4443, 0.7640, 0.3472, 0.1365, 0.0470];
        for (s0, want) in expected.iter().enumerate() {
            let got = poisson_backorders(2.348_768, s0 as u64);
            assert!((got - want).abs() < 5e-5, "s0 = {s0}: {got}");
        }
    }

    fn sherbrooke_bases(stock: u64) -> Vec<MetricBase> {
        let year = 365.0;
        vec![
            MetricBase {
                demand_per_day: 23.2 / year,
                local_repair_probability: 0.2,
                local_repair_days: 0.01 * year,
                order_and_ship_days: 0.01 * year,
                stock,
            };
            5
        ]
    }

    #[test]
    fn metric_and_vari_metric_match_sherbrooke_at_total_stock_six() {
        // ORACLES.md: S = 6 -> (s0 = 1, EBO 0.5743) METRIC, 0.6058 VARI-METRIC.
        let depot_days = 0.02531 * 365.0;
        let metric = metric_total_backorders(&sherbrooke_bases(1), depot_days, 1, false);
        let vari = metric_total_backorders(&sherbrooke_bases(1), depot_days, 1, true);
        assert!((metric - 0.5743).abs() < 5e-4, "{metric}");
        assert!((vari - 0.6058).abs() < 5e-4, "{vari}");
    }

    #[test]
    fn two_outlet_metric_table() {
        // ORACLES.md: two outlets, 0.1/day each, resupply 2 days, depot repair 14 days.
        let table = [
            ((0, 0), 3.2000),
            ((0, 1), 1.6038),
            ((1, 1), 0.9066),
            ((2, 2), 0.0966),
            ((3, 3), 0.0033),
        ];
        for ((depot, outlet), want) in table {
            let bases = vec![
                MetricBase {
                    demand_per_day: 0.1,
                    local_repair_probability: 0.0,
                    local_repair_days: 0.0,
                    order_and_ship_days: 2.0,
                    stock: outlet,
                };
                2
            ];
            let got = metric_total_backorders(&bases, 14.0, depot, false);
            assert!((got - want).abs() < 5e-4, "({depot}, {outlet}): {got}");
        }
    }
}
