//! Training: every candidate stock vector of every part tree scored by the exact tree
//! simulator on the same training years (common random numbers), kept as one downtime
//! cost per candidate and year, the blocks of the scenario CVaR model.
//!
//! Trees run in parallel; each tree's failures are drawn from streams keyed by (seed,
//! replication, part, location, purpose) and its candidates are scored in order, so the
//! costs do not depend on the thread count or on which trees share a batch. Memory is the
//! candidates' yearly costs plus one tree's failure streams per thread: no per-day detail.
//!
//! **Recombined network years.** The trees are independent in the model (each draws from
//! its own streams), so a network year may pair tree A's year 17 with tree B's year 63 as
//! well as with B's year 17: every such pairing has the model's joint distribution. The
//! scenario model therefore sees [`Recombination::copies`] blocks of the simulated years,
//! the first as simulated and each further one with every tree's years in its own seeded
//! order ([`Recombination::expand`], keyed by the tree's part and root, never by its
//! position in the request). No simulation is added, but the network-wide tail is then
//! estimated from many more combinations of the trees' bad years, instead of from the few
//! worst simulated years, which the cross-part solve would otherwise fit (seen on the
//! standard test network, seed 1 at 1.5x: in-sample CVaR95 $35k against $289k out of
//! sample with 100 years and one copy). Copies are bounded by [`MAX_RECOMBINED_CELLS`].
//!
//! **Who simulates.** Scoring a tree's vectors ([`score_task`]) is the time-consuming step
//! and depends only on its [`ScoreTask`] and the run's [`ScoreSetup`], so [`train`] and
//! [`search_round`] hand the tasks to a [`Scoring`]: [`LocalScoring`] runs them on this
//! process's threads; the service's shared scoring splits them into work units that every
//! server on a shared store may compute (`service::work`). Either way the results come
//! back in task order and everything built from them (recombination, investments, the
//! search's picks) is computed here, so the trained model is the same bytes whoever
//! simulated.

use super::{OptimizeError, TrainingStats, check_cancel};
use crate::domain::DomainError;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spares_simulations::tree::{PartTree, TreeScratch, TreeSimulator, TreeWindow};
use spares_solver::scenario::{VectorBlock, VectorCandidate};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// Most recombined copies of the simulated years (see the module docs).
pub const MAX_RECOMBINED_COPIES: usize = 8;
/// Most scenario cells (candidates x network years) recombination may grow the model to,
/// about 160 MB of losses; above it the copies shrink (to one: the simulated years only).
pub const MAX_RECOMBINED_CELLS: f64 = 2e7;
/// Candidates per tree the search rounds may add (three per round), counted when copies
/// are chosen.
const SEARCH_CANDIDATES_PER_TREE: usize = 3 * super::SEARCH_ROUNDS;

/// How the simulated years of every tree become the scenario model's network years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recombination {
    /// Simulated training years.
    pub years: usize,
    /// Copies of them in the model: the first as simulated, the others reordered per tree.
    pub copies: usize,
    /// The training seed (the orders are derived from it).
    pub seed: u64,
}

impl Recombination {
    /// As many copies as fit [`MAX_RECOMBINED_CELLS`] for `candidates` per tree (plus what
    /// the search may add), at most [`MAX_RECOMBINED_COPIES`], at least one.
    pub fn fitting(candidates: &[Vec<Vec<u32>>], years: u32, seed: u64) -> Self {
        let per_copy: usize = candidates
            .iter()
            .map(|c| c.len() + SEARCH_CANDIDATES_PER_TREE)
            .sum::<usize>()
            .saturating_mul(years as usize);
        let fit = (MAX_RECOMBINED_CELLS / per_copy.max(1) as f64).floor() as usize;
        Self {
            years: years as usize,
            copies: fit.clamp(1, MAX_RECOMBINED_COPIES),
            seed,
        }
    }

    /// Network years of the scenario model.
    pub fn scenarios(&self) -> usize {
        self.years * self.copies
    }

    /// One tree's yearly losses as the model's scenario losses: copy 0 as simulated, copy
    /// `k` in the tree's own seeded order of years. Every candidate of a tree goes through
    /// the same orders, so candidates stay on common random numbers.
    pub fn expand(&self, tree: &PartTree, year_losses: &[f64]) -> Vec<f64> {
        if self.copies <= 1 {
            return year_losses.to_vec();
        }
        let mut out = Vec::with_capacity(self.scenarios());
        out.extend_from_slice(year_losses);
        let mut order: Vec<usize> = Vec::with_capacity(year_losses.len());
        for copy in 1..self.copies {
            self.order(tree, copy, &mut order);
            out.extend(order.iter().map(|&y| year_losses[y]));
        }
        out
    }

    /// The order of the years in copy `copy` of `tree`.
    fn order(&self, tree: &PartTree, copy: usize, order: &mut Vec<usize>) {
        order.clear();
        order.extend(0..self.years);
        let root = tree.nodes.first().map_or("", |n| n.id.as_str());
        let key = fnv(&[tree.part.as_str(), root]);
        let mut rng = SmallRng::seed_from_u64(
            key ^ self.seed.rotate_left(23) ^ (copy as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        order.shuffle(&mut rng);
    }
}

/// FNV-1a of a few ids with a separator, a stable key that does not depend on positions.
fn fnv(ids: &[&str]) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for id in ids {
        for byte in id.bytes().chain(std::iter::once(0xFF)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    hash
}

/// The trained model: per tree its candidates and their costs per network year.
#[derive(Debug, Clone)]
pub struct Trained {
    /// `candidates[t][c]`: units per node of candidate `c` of tree `t`.
    pub candidates: Vec<Vec<Vec<u32>>>,
    /// One block per tree, candidates in the same order, losses per network year
    /// (`recombination.scenarios()` of them).
    pub blocks: Vec<VectorBlock>,
    /// Simulated training years.
    pub years: usize,
    /// How the simulated years became network years.
    pub recombination: Recombination,
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

    /// Network years of the scenario model.
    pub fn scenarios(&self) -> usize {
        self.recombination.scenarios()
    }
}

/// What every scoring of a run shares: the window simulated, the seed and the years.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreSetup {
    /// The window every tree simulation measures.
    pub window: TreeWindow,
    /// The training seed.
    pub seed: u64,
    /// Training years (replications).
    pub years: u32,
}

/// One tree's stock vectors to score on the training years.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreTask {
    /// The tree.
    pub tree: PartTree,
    /// Units per node of each vector.
    pub vectors: Vec<Vec<u32>>,
}

/// One task's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Per vector (in the task's order), the downtime cost of each simulated year.
    pub year_losses: Vec<Vec<f64>>,
    /// Failures simulated (the tree's failures times its vectors).
    pub failures: u64,
    /// Seconds the simulation kept a thread busy.
    pub busy_seconds: f64,
}

/// Who simulates a batch of [`ScoreTask`]s (see the module docs).
pub trait Scoring: Sync {
    /// Scores every task on `setup`'s years and returns the scores in task order.
    /// `progress` gets the share of tasks done. Errors: a tree the simulator refuses
    /// (`InvalidArgument` on `trees`), `Cancelled`, or shared work that failed (`Work`).
    fn score(
        &self,
        setup: ScoreSetup,
        tasks: Vec<ScoreTask>,
        progress: &(dyn Fn(f64) + Sync),
        cancel: &AtomicBool,
    ) -> Result<Vec<Scored>, OptimizeError>;
}

/// Scoring on this process's threads (rayon), one task per thread at a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalScoring;

impl Scoring for LocalScoring {
    fn score(
        &self,
        setup: ScoreSetup,
        tasks: Vec<ScoreTask>,
        progress: &(dyn Fn(f64) + Sync),
        cancel: &AtomicBool,
    ) -> Result<Vec<Scored>, OptimizeError> {
        let done = AtomicUsize::new(0);
        let total = tasks.len().max(1);
        tasks
            .par_iter()
            .map_init(TreeScratch::default, |scratch, task| {
                let scored = score_task(setup, task, scratch, cancel)?;
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(finished as f64 / total as f64);
                Ok(scored)
            })
            .collect()
    }
}

/// Every vector of one task on the setup's years: the exact tree simulator, its failures
/// drawn from streams keyed by (seed, replication, part, location, purpose), so the costs
/// depend on nothing but the task and the setup. Errors: a tree the simulator refuses
/// (`InvalidArgument` on `trees`), or `Cancelled` (checked between vectors).
pub fn score_task(
    setup: ScoreSetup,
    task: &ScoreTask,
    scratch: &mut TreeScratch,
    cancel: &AtomicBool,
) -> Result<Scored, OptimizeError> {
    check_cancel(cancel)?;
    let busy = Instant::now();
    let simulator = TreeSimulator::new(task.tree.clone(), setup.window, setup.seed, 0, setup.years)
        .map_err(|e| DomainError::invalid("trees", e.to_string()))?;
    let years = simulator.replications();
    let mut year_losses = Vec::with_capacity(task.vectors.len());
    for stock in &task.vectors {
        check_cancel(cancel)?;
        let mut losses = vec![0.0; years];
        simulator.costs(stock, &mut losses, scratch);
        year_losses.push(losses);
    }
    Ok(Scored {
        year_losses,
        failures: simulator.failures_drawn() as u64 * task.vectors.len() as u64,
        busy_seconds: busy.elapsed().as_secs_f64(),
    })
}

/// Scores every candidate of every tree on `setup`'s training years through `scoring`. A
/// candidate's holding cost is `holding_per_usd` times its investment. `progress` gets the
/// share of trees done. Errors: as [`Scoring::score`].
pub fn train(
    trees: &[PartTree],
    candidates: Vec<Vec<Vec<u32>>>,
    setup: ScoreSetup,
    holding_per_usd: f64,
    scoring: &dyn Scoring,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<Trained, OptimizeError> {
    let start = Instant::now();
    let recombination = Recombination::fitting(&candidates, setup.years, setup.seed);
    let tasks = trees
        .iter()
        .zip(&candidates)
        .map(|(tree, vectors)| ScoreTask {
            tree: tree.clone(),
            vectors: vectors.clone(),
        })
        .collect();
    let scored = scoring.score(setup, tasks, progress, cancel)?;
    let stats = TrainingStats {
        trees: trees.len(),
        candidates: candidates.iter().map(Vec::len).sum(),
        failures_simulated: scored.iter().map(|r| r.failures).sum(),
        busy_seconds: scored.iter().map(|r| r.busy_seconds).sum(),
        wall_seconds: start.elapsed().as_secs_f64(),
        network_years: recombination.scenarios(),
    };
    let blocks = trees
        .iter()
        .zip(&candidates)
        .zip(scored)
        .map(|((tree, vectors), scored)| {
            block_of(
                tree,
                &recombination,
                vectors,
                scored.year_losses,
                holding_per_usd,
            )
        })
        .collect();
    Ok(Trained {
        candidates,
        blocks,
        years: setup.years as usize,
        recombination,
        stats,
    })
}

/// Every scored vector of one tree as a block of the scenario model: its simulated years
/// recombined into network years, its investment and holding cost.
fn block_of(
    tree: &PartTree,
    recombination: &Recombination,
    vectors: &[Vec<u32>],
    year_losses: Vec<Vec<f64>>,
    holding_per_usd: f64,
) -> VectorBlock {
    let candidates = vectors
        .iter()
        .zip(year_losses)
        .map(|(stock, year_losses)| {
            let losses = recombination.expand(tree, &year_losses);
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
/// on every training year (through `scoring`); a move's first-order change of the
/// objective is its change of holding + mean + lambda x the tail-weighted sum of its
/// yearly costs (`tail_weights`: the worst years of the current plan). Up to three are
/// added to the tree's candidates: the best shift of a unit between echelons (same
/// investment) if it lowers the objective, the addition that lowers it most per dollar,
/// and the removal that raises it least per dollar freed. The cross-part solve then
/// decides. Returns the candidates added. Errors: as [`train`].
#[allow(clippy::too_many_arguments)]
pub fn search_round(
    trees: &[PartTree],
    trained: &mut Trained,
    choice: &[usize],
    tail_weights: &[f64],
    cvar_weight: f64,
    setup: ScoreSetup,
    holding_per_usd: f64,
    scoring: &dyn Scoring,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<usize, OptimizeError> {
    let start = Instant::now();
    check_cancel(cancel)?;
    // The neighbours not yet among each tree's candidates; trees without any are not
    // simulated.
    let moves: Vec<Vec<Vec<u32>>> = trees
        .iter()
        .enumerate()
        .map(|(t, tree)| {
            let known = &trained.candidates[t];
            super::candidates::neighbours(tree, &known[choice[t]])
                .into_iter()
                .filter(|v| !known.contains(v))
                .collect()
        })
        .collect();
    let tasks: Vec<ScoreTask> = trees
        .iter()
        .zip(&moves)
        .filter(|(_, vectors)| !vectors.is_empty())
        .map(|(tree, vectors)| ScoreTask {
            tree: tree.clone(),
            vectors: vectors.clone(),
        })
        .collect();
    let mut scored = scoring.score(setup, tasks, progress, cancel)?.into_iter();
    let mut added = 0;
    for (t, (tree, vectors)) in trees.iter().zip(moves).enumerate() {
        if vectors.is_empty() {
            continue;
        }
        let Some(scores) = scored.next() else {
            return Err(OptimizeError::Work(
                "fewer scores than tasks came back".into(),
            ));
        };
        trained.stats.failures_simulated += scores.failures;
        trained.stats.busy_seconds += scores.busy_seconds;
        let block = block_of(
            tree,
            &trained.recombination,
            &vectors,
            scores.year_losses,
            holding_per_usd,
        );
        let current = &trained.blocks[t].candidates[choice[t]];
        let candidates: Vec<Move> = vectors
            .into_iter()
            .zip(block.candidates)
            .map(|(stock, candidate)| Move {
                change: first_order(current, &candidate, tail_weights, cvar_weight),
                spend: candidate.investment - current.investment,
                stock,
                candidate,
            })
            .collect();
        for m in pick(candidates) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use spares_simulations::model::TimeDistribution;
    use spares_simulations::tree::TreeNode;

    fn tree(part: &str, root: &str) -> PartTree {
        PartTree {
            part: part.into(),
            unit_cost: 10.0,
            nodes: vec![TreeNode {
                id: root.into(),
                parent: None,
                resupply_days: TimeDistribution::Deterministic { days: 30.0 },
                demand_per_day: 0.1,
                variance_to_mean_ratio: 1.0,
                downtime_cost_per_hour: 100.0,
                emergency: Vec::new(),
            }],
        }
    }

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn every_copy_is_the_simulated_years_in_another_order_and_the_first_is_as_simulated() {
        let years: Vec<f64> = (0..50).map(|y| f64::from(y) * 3.5).collect();
        let r = Recombination {
            years: 50,
            copies: 4,
            seed: 7,
        };
        let out = r.expand(&tree("P1", "DEP"), &years);
        assert_eq!(out.len(), r.scenarios());
        assert_eq!(&out[..50], &years[..]);
        for copy in 1..4 {
            let block = out[copy * 50..(copy + 1) * 50].to_vec();
            assert_ne!(block, years, "copy {copy} kept the simulated order");
            assert_eq!(sorted(block), years, "copy {copy} is not a permutation");
        }
    }

    #[test]
    fn orders_depend_on_the_tree_and_seed_not_on_the_call() {
        let years: Vec<f64> = (0..40).map(f64::from).collect();
        let r = Recombination {
            years: 40,
            copies: 3,
            seed: 11,
        };
        let a = r.expand(&tree("P1", "DEP"), &years);
        assert_eq!(a, r.expand(&tree("P1", "DEP"), &years), "not deterministic");
        assert_ne!(
            a,
            r.expand(&tree("P2", "DEP"), &years),
            "trees share an order"
        );
        assert_ne!(
            a,
            r.expand(&tree("P1", "DEP-2"), &years),
            "roots share an order"
        );
        let other_seed = Recombination { seed: 12, ..r };
        assert_ne!(a, other_seed.expand(&tree("P1", "DEP"), &years));
        // Two candidates of one tree go through the same orders (common random numbers).
        let doubled: Vec<f64> = years.iter().map(|y| 2.0 * y).collect();
        let b = r.expand(&tree("P1", "DEP"), &doubled);
        assert!(a.iter().zip(&b).all(|(x, y)| (2.0 * x - y).abs() < 1e-12));
    }

    #[test]
    fn copies_shrink_to_fit_the_cell_bound_and_never_below_one() {
        let small = vec![vec![vec![0u32]; 20]; 10];
        assert_eq!(
            Recombination::fitting(&small, 100, 1).copies,
            MAX_RECOMBINED_COPIES
        );
        // 4,000 trees x (30 + search) candidates x 100 years is past the bound.
        let large = vec![vec![vec![0u32]; 30]; 4_000];
        let r = Recombination::fitting(&large, 100, 1);
        assert_eq!(r.copies, 1);
        let cells = (30 + SEARCH_CANDIDATES_PER_TREE) * 1_000 * 100;
        let mid = vec![vec![vec![0u32]; 30]; 1_000];
        let expected = (MAX_RECOMBINED_CELLS / cells as f64).floor() as usize;
        assert_eq!(
            Recombination::fitting(&mid, 100, 1).copies,
            expected.clamp(1, MAX_RECOMBINED_COPIES)
        );
        assert!(expected > 1 && expected < MAX_RECOMBINED_COPIES);
        // One copy is the simulated years themselves.
        let years = [1.0, 2.0, 3.0];
        assert_eq!(r.expand(&tree("P", "D"), &years), years.to_vec());
    }
}
