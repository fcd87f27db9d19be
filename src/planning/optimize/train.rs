//! Training: every candidate stock vector of every part tree scored by the exact tree
//! simulator on the same training years (common random numbers), kept as one downtime
//! cost per candidate and year, the blocks of the scenario CVaR model.
//!
//! Trees run in parallel; each tree's failures are drawn from streams keyed by (seed,
//! replication, part, location, purpose) and its candidates are scored in order, so the
//! costs do not depend on the thread count or on which trees share a batch. Memory is the
//! candidates' yearly costs plus one tree's failure streams per thread: no per-day detail.

use super::{OptimizeError, TrainingStats, check_cancel};
use crate::domain::DomainError;
use rayon::prelude::*;
use spares_simulations::tree::{PartTree, TreeScratch, TreeSimulator, TreeWindow};
use spares_solver::scenario::{VectorBlock, VectorCandidate};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// The trained model: per tree its candidates and their yearly costs.
#[derive(Debug, Clone)]
pub struct Trained {
    /// `candidates[t][c]`: units per node of candidate `c` of tree `t`.
    pub candidates: Vec<Vec<Vec<u32>>>,
    /// One block per tree, candidates in the same order, losses per training year.
    pub blocks: Vec<VectorBlock>,
    /// Training years.
    pub years: usize,
    /// What the simulation did.
    pub stats: TrainingStats,
}

impl Trained {
    /// The stock vector of every tree under a choice of one candidate per tree.
    pub fn stock_of(&self, choice: &[usize]) -> Vec<Vec<u32>> {
        self.candidates
            .iter()
            .zip(choice)
            .map(|(c, &i)| c[i].clone())
            .collect()
    }
}

/// One tree's scored candidates.
struct TreeResult {
    block: VectorBlock,
    failures: u64,
    busy_seconds: f64,
}

/// Scores every candidate of every tree on `years` training years of `seed`. A candidate's
/// holding cost is `holding_per_usd` times its investment. `progress` gets the share of
/// trees done. Errors: a tree the simulator refuses (`InvalidArgument` on `trees`), or
/// `Cancelled`.
#[allow(clippy::too_many_arguments)]
pub fn train(
    trees: &[PartTree],
    candidates: Vec<Vec<Vec<u32>>>,
    window: TreeWindow,
    seed: u64,
    years: u32,
    holding_per_usd: f64,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<Trained, OptimizeError> {
    let start = Instant::now();
    let done = AtomicUsize::new(0);
    let total = trees.len().max(1);
    let results: Vec<TreeResult> = trees
        .par_iter()
        .zip(&candidates)
        .map_init(TreeScratch::default, |scratch, (tree, vectors)| {
            check_cancel(cancel)?;
            let busy = Instant::now();
            let simulator = TreeSimulator::new(tree.clone(), window, seed, 0, years)
                .map_err(|e| DomainError::invalid("trees", e.to_string()))?;
            let block = score_tree(tree, &simulator, vectors, holding_per_usd, scratch);
            let failures = simulator.failures_drawn() as u64 * vectors.len() as u64;
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(finished as f64 / total as f64);
            Ok(TreeResult {
                block,
                failures,
                busy_seconds: busy.elapsed().as_secs_f64(),
            })
        })
        .collect::<Result<_, OptimizeError>>()?;
    let stats = TrainingStats {
        trees: trees.len(),
        candidates: candidates.iter().map(Vec::len).sum(),
        failures_simulated: results.iter().map(|r| r.failures).sum(),
        busy_seconds: results.iter().map(|r| r.busy_seconds).sum(),
        wall_seconds: start.elapsed().as_secs_f64(),
    };
    Ok(Trained {
        candidates,
        blocks: results.into_iter().map(|r| r.block).collect(),
        years: years as usize,
        stats,
    })
}

/// Every candidate of one tree on the simulator's years.
fn score_tree(
    tree: &PartTree,
    simulator: &TreeSimulator,
    vectors: &[Vec<u32>],
    holding_per_usd: f64,
    scratch: &mut TreeScratch,
) -> VectorBlock {
    let years = simulator.replications();
    let candidates = vectors
        .iter()
        .map(|stock| {
            let mut losses = vec![0.0; years];
            simulator.costs(stock, &mut losses, scratch);
            let investment = tree.unit_cost * stock.iter().map(|&u| f64::from(u)).sum::<f64>();
            VectorCandidate {
                investment,
                holding_cost: holding_per_usd * investment,
                losses,
            }
        })
        .collect();
    VectorBlock {
        name: format!("{}@{}", tree.part, tree.nodes[0].id),
        candidates,
    }
}

/// A neighbour of a tree's chosen candidate, scored.
struct Move {
    stock: Vec<u32>,
    candidate: VectorCandidate,
    /// First-order change of the objective (see [`search_round`]).
    change: f64,
    /// Investment change.
    spend: f64,
}

/// One round of the simulation-guided search beyond the METRIC order. For each tree, the
/// single-unit neighbours of its chosen candidate (`candidates::neighbours`) are simulated
/// on every training year; a move's first-order change of the objective is its change of
/// holding + mean + lambda x the tail-weighted sum of its yearly costs (`tail_weights`:
/// the worst years of the current plan). Up to three are added to the tree's candidates:
/// the best shift of a unit between echelons (same investment) if it lowers the objective,
/// the addition that lowers it most per dollar, and the removal that raises it least per
/// dollar freed. The cross-part solve then decides. Returns the candidates added. Errors:
/// as [`train`].
#[allow(clippy::too_many_arguments)]
pub fn search_round(
    trees: &[PartTree],
    trained: &mut Trained,
    choice: &[usize],
    tail_weights: &[f64],
    cvar_weight: f64,
    window: TreeWindow,
    seed: u64,
    holding_per_usd: f64,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<usize, OptimizeError> {
    let start = Instant::now();
    let done = AtomicUsize::new(0);
    let total = trees.len().max(1);
    let years = trained.years as u32;
    let found: Vec<(Vec<Move>, u64, f64)> = trees
        .par_iter()
        .enumerate()
        .map_init(TreeScratch::default, |scratch, (t, tree)| {
            check_cancel(cancel)?;
            let busy = Instant::now();
            let current = &trained.blocks[t].candidates[choice[t]];
            let known = &trained.candidates[t];
            let moves: Vec<Vec<u32>> = super::candidates::neighbours(tree, &known[choice[t]])
                .into_iter()
                .filter(|v| !known.contains(v))
                .collect();
            let mut failures = 0;
            let mut scored = Vec::new();
            if !moves.is_empty() {
                let simulator = TreeSimulator::new(tree.clone(), window, seed, 0, years)
                    .map_err(|e| DomainError::invalid("trees", e.to_string()))?;
                failures = simulator.failures_drawn() as u64 * moves.len() as u64;
                let block = score_tree(tree, &simulator, &moves, holding_per_usd, scratch);
                for (stock, candidate) in moves.into_iter().zip(block.candidates) {
                    let change = first_order(current, &candidate, tail_weights, cvar_weight);
                    let spend = candidate.investment - current.investment;
                    scored.push(Move {
                        stock,
                        candidate,
                        change,
                        spend,
                    });
                }
            }
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(finished as f64 / total as f64);
            Ok((pick(scored), failures, busy.elapsed().as_secs_f64()))
        })
        .collect::<Result<_, OptimizeError>>()?;
    let mut added = 0;
    for (t, (moves, failures, busy)) in found.into_iter().enumerate() {
        trained.stats.failures_simulated += failures;
        trained.stats.busy_seconds += busy;
        for m in moves {
            trained.candidates[t].push(m.stock);
            trained.blocks[t].candidates.push(m.candidate);
            trained.stats.candidates += 1;
            added += 1;
        }
    }
    trained.stats.wall_seconds += start.elapsed().as_secs_f64();
    Ok(added)
}

/// Holding + mean + lambda x tail-weighted sum, of `next` minus `now`.
fn first_order(
    now: &VectorCandidate,
    next: &VectorCandidate,
    tail_weights: &[f64],
    cvar_weight: f64,
) -> f64 {
    let years = now.losses.len().max(1) as f64;
    let (mut mean, mut tail) = (0.0, 0.0);
    for ((a, b), w) in now.losses.iter().zip(&next.losses).zip(tail_weights) {
        mean += (b - a) / years;
        tail += w * (b - a);
    }
    next.holding_cost - now.holding_cost + mean + cvar_weight * tail
}

/// The best shift (if it helps), the best addition per dollar and the cheapest removal per
/// dollar freed.
fn pick(moves: Vec<Move>) -> Vec<Move> {
    let mut best: [Option<(f64, usize)>; 3] = [None; 3];
    for (i, m) in moves.iter().enumerate() {
        let (slot, score) = if m.spend.abs() < 1e-9 {
            if m.change >= 0.0 {
                continue;
            }
            (0, m.change)
        } else if m.spend > 0.0 {
            (1, m.change / m.spend)
        } else {
            (2, m.change / -m.spend)
        };
        if best[slot].is_none_or(|(s, _)| score < s) {
            best[slot] = Some((score, i));
        }
    }
    let keep: Vec<usize> = best.iter().flatten().map(|&(_, i)| i).collect();
    moves
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, m)| m)
        .collect()
}
