//! Tiny instances solved by brute force: 1 depot, 1 regional, 2 stores, 2 parts (the
//! seeded test-network distributions), budget = the averages plan's investment. Every plan
//! within the budget is enumerated, each node's level bounded by a stated rule: at most one
//! more than the 0.999 quantile of Poisson demand reaching the node (its own and its
//! subtree's) over its own resupply time. Every enumerated plan and the product's plan
//! (trained at its defaults on its own seed) are scored on the same 10,000 out-of-sample
//! years (common random numbers); the optimum of mean + CVaR95 of yearly downtime cost
//! over the enumeration is the bar, and the product's plan must be within 5% of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spares::planning::optimize::baselines::averages_investment;
use spares::planning::optimize::problem::part_trees;
use spares::planning::optimize::{OptimizeRequest, PlanMode, TrainingModel, run_optimize};
use spares::planning::simulate::Settings;
use spares::planning::testnet::{TestNetworkShape, generate};
use spares_simulations::tree::{PartTree, TreeScratch, TreeSimulator, TreeWindow};
use spares_solver::lp::Backend;
use std::sync::atomic::AtomicBool;

const YEARS: u32 = 10_000;
/// Training years the product is asked for: a tail of 5% over this many years (250) is
/// stable enough on two parts whose tail is a rare long depot shortage.
const TRAINING_YEARS: u32 = 5_000;
const EVALUATION_SEED: u64 = 0xE7A1;
const ALPHA: f64 = 0.95;

/// Smallest n with P(Poisson(mean) <= n) >= 0.999.
fn poisson_quantile(mean: f64) -> u32 {
    let (mut n, mut p) = (0u32, (-mean).exp());
    let mut cumulative = p;
    while cumulative < 0.999 {
        n += 1;
        p *= mean / f64::from(n);
        cumulative += p;
    }
    n
}

/// The stated bound of every node of a tree.
fn bounds(tree: &PartTree) -> Vec<u32> {
    let mut flow: Vec<f64> = tree.nodes.iter().map(|n| n.demand_per_day).collect();
    for i in (0..tree.nodes.len()).rev() {
        if let Some(p) = tree.nodes[i].parent {
            flow[p] += flow[i];
        }
    }
    tree.nodes
        .iter()
        .zip(&flow)
        .map(|(node, d)| poisson_quantile(d * node.resupply_days.mean_days()) + 1)
        .collect()
}

/// Every vector within the bounds costing at most `budget`, with its investment.
fn vectors(tree: &PartTree, budget: f64) -> Vec<(Vec<u32>, f64)> {
    let bound = bounds(tree);
    let mut out = Vec::new();
    let mut stock = vec![0u32; bound.len()];
    loop {
        let investment = tree.unit_cost * stock.iter().map(|&u| f64::from(u)).sum::<f64>();
        if investment <= budget + 1e-9 {
            out.push((stock.clone(), investment));
        }
        let mut i = 0;
        loop {
            if i == stock.len() {
                return out;
            }
            stock[i] += 1;
            if stock[i] <= bound[i] {
                break;
            }
            stock[i] = 0;
            i += 1;
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean of the worst 5% (500 of 10,000 years exactly).
fn cvar(v: &[f64], scratch: &mut Vec<f64>) -> f64 {
    let k = ((1.0 - ALPHA) * v.len() as f64).round() as usize;
    scratch.clear();
    scratch.extend_from_slice(v);
    scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    scratch[..k].iter().sum::<f64>() / k as f64
}

struct Scored {
    investment: f64,
    years: Vec<f64>,
    mean: f64,
    cvar: f64,
}

fn score(sim: &TreeSimulator, stock: &[u32], investment: f64, scratch: &mut Vec<f64>) -> Scored {
    let mut years = vec![0.0; YEARS as usize];
    sim.costs(stock, &mut years, &mut TreeScratch::default());
    Scored {
        investment,
        mean: mean(&years),
        cvar: cvar(&years, scratch),
        years,
    }
}

#[test]
fn the_product_is_within_five_percent_of_the_enumerated_optimum() {
    let shape = TestNetworkShape {
        regionals: 1,
        stores_per_regional: 2,
        parts: 2,
    };
    for seed in [1u64, 2] {
        let network = generate(seed, shape);
        let budget = averages_investment(&network).unwrap();
        let request = OptimizeRequest {
            model: TrainingModel::Echelons,
            mode: PlanMode::Budget,
            settings: Settings {
                horizon_days: 365,
                warmup_days: 0,
                replications: TRAINING_YEARS,
                seed: 42,
                part_ids: Vec::new(),
            },
            budget_usd: Some(budget),
            cvar_alpha: ALPHA,
            cvar_weight: 1.0,
            backend: Backend::Clarabel,
            time_limit_seconds: 60.0,
            critical_fill_rate_floor: None,
            compare: false,
        };
        let result = run_optimize(&network, &request, &|_, _| {}, &AtomicBool::new(false)).unwrap();
        let trees = part_trees(&network, &result.part_ids).unwrap();
        assert_eq!(trees.len(), 2);
        let window = TreeWindow {
            warm_up_days: f64::from(result.warm_up.days),
            measured_days: 365.0,
        };
        let mut scratch = Vec::new();
        let mut options: Vec<Vec<Scored>> = Vec::new();
        let mut product: Vec<Scored> = Vec::new();
        for tree in &trees {
            let sim = TreeSimulator::new(tree.clone(), window, EVALUATION_SEED, 0, YEARS).unwrap();
            let chosen: Vec<u32> = tree
                .nodes
                .iter()
                .map(|n| {
                    result
                        .levels
                        .iter()
                        .find(|(p, l, _)| *p == tree.part && *l == n.id)
                        .map(|(_, _, u)| *u as u32)
                        .unwrap()
                })
                .collect();
            let chosen_investment =
                tree.unit_cost * chosen.iter().map(|&u| f64::from(u)).sum::<f64>();
            product.push(score(&sim, &chosen, chosen_investment, &mut scratch));
            options.push(
                vectors(tree, budget)
                    .into_iter()
                    .map(|(v, i)| score(&sim, &v, i, &mut scratch))
                    .collect(),
            );
        }
        let objective = |a: &Scored, b: &Scored, scratch: &mut Vec<f64>, sum: &mut Vec<f64>| {
            sum.clear();
            sum.extend(a.years.iter().zip(&b.years).map(|(x, y)| x + y));
            a.mean + b.mean + cvar(sum, scratch)
        };
        let mut sum = Vec::new();
        let mut best = f64::INFINITY;
        let mut best_plan = (0, 0);
        let mut plans = 0usize;
        for (i, a) in options[0].iter().enumerate() {
            for (j, b) in options[1].iter().enumerate() {
                if a.investment + b.investment > budget + 1e-9 {
                    continue;
                }
                plans += 1;
                // CVaR of a sum of non-negative costs is at least each one's CVaR.
                if a.mean + b.mean + a.cvar.max(b.cvar) >= best {
                    continue;
                }
                let value = objective(a, b, &mut scratch, &mut sum);
                if value < best {
                    best = value;
                    best_plan = (i, j);
                }
            }
        }
        let ours = objective(&product[0], &product[1], &mut scratch, &mut sum);
        let stock = |t: usize, i: usize| vectors(&trees[t], budget)[i].0.clone();
        println!(
            "optimum {:?} {:?}; product {:?}",
            stock(0, best_plan.0),
            stock(1, best_plan.1),
            result.levels
        );
        println!(
            "seed {seed}: budget {budget:.0}, {plans} plans enumerated; optimum {best:.0}, product {ours:.0} ({:+.2}%), product invests {:.0}",
            (ours / best - 1.0) * 100.0,
            product[0].investment + product[1].investment
        );
        assert!(product[0].investment + product[1].investment <= budget + 1e-6);
        assert!(
            ours <= 1.05 * best,
            "seed {seed}: product {ours} vs optimum {best}"
        );
    }
}
