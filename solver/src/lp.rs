//! Linear programs as plain data, solved by a backend chosen by name, and written as MPS.
//!
//! Backends and time limits:
//! - `microlp` (pure Rust, simplex with branch and bound): honours the time limit; an LP or
//!   MILP interrupted with an incumbent reports [`LpStatus::TimeLimit`], without one an error.
//! - `clarabel` (pure Rust, interior point, continuous only): honours the time limit through
//!   its settings; reaching it is reported as [`SolverError::TimeLimit`] (no partial answer).
//! - `highs` (behind the `highs` cargo feature; the build needs cmake, a C++ compiler and
//!   libclang): honours the time limit and reports [`LpStatus::TimeLimit`] with its incumbent,
//!   or [`SolverError::TimeLimit`] without one. MILPs are solved to a zero relative gap (as
//!   microlp's branch and bound does), so `Optimal` means proven to HiGHS's absolute MIP gap
//!   of 1e-6 rather than to its default relative gap of 1e-4.

use crate::error::{Result, SolverError, invalid};
use good_lp::{
    Expression, ProblemVariables, ResolutionError, Solution, SolutionStatus, SolverModel, Variable,
    WithTimeLimit, constraint, variable,
};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Instant;

/// An LP backend, always chosen by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// microlp: pure Rust simplex; best for small LPs and small MILPs.
    Microlp,
    /// Clarabel: pure Rust interior point; best for large scenario LPs.
    Clarabel,
    /// HiGHS: needs the `highs` cargo feature (cmake, g++, libclang at build time).
    Highs,
}

impl Backend {
    /// The backend's name as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Microlp => "microlp",
            Self::Clarabel => "clarabel",
            Self::Highs => "highs",
        }
    }

    /// Whether the backend can solve models with integer columns.
    pub fn supports_integers(self) -> bool {
        !matches!(self, Self::Clarabel)
    }

    /// Whether this build includes the backend.
    pub fn is_available(self) -> bool {
        !matches!(self, Self::Highs) || cfg!(feature = "highs")
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = SolverError;
    fn from_str(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "microlp" => Ok(Self::Microlp),
            "clarabel" => Ok(Self::Clarabel),
            "highs" => Ok(Self::Highs),
            other => Err(invalid(
                "backend",
                format!("unknown backend `{other}` (microlp, clarabel, highs)"),
            )),
        }
    }
}

/// Direction of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sense {
    /// sum a_j x_j <= rhs
    LessEqual,
    /// sum a_j x_j >= rhs
    GreaterEqual,
    /// sum a_j x_j = rhs
    Equal,
}

/// A column: bounds, objective coefficient, integrality.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Lower bound (may be -infinity).
    pub lower: f64,
    /// Upper bound (may be +infinity).
    pub upper: f64,
    /// Objective coefficient (minimised).
    pub cost: f64,
    /// Whether the column must take an integer value.
    pub integer: bool,
}

/// A sparse row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// (column index, coefficient) pairs.
    pub coefficients: Vec<(usize, f64)>,
    /// Direction.
    pub sense: Sense,
    /// Right-hand side.
    pub rhs: f64,
}

/// A minimisation LP (or MILP) as plain data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinearProgram {
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows.
    pub rows: Vec<Row>,
    /// Constant added to the objective.
    pub objective_offset: f64,
}

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LpStatus {
    /// Proven optimal.
    Optimal,
    /// The time limit stopped the backend with a feasible, unproven answer.
    TimeLimit,
}

/// A solved LP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LpSolution {
    /// How the solve ended.
    pub status: LpStatus,
    /// Objective value including the offset.
    pub objective: f64,
    /// Column values.
    pub values: Vec<f64>,
    /// Backend used.
    pub backend: Backend,
    /// Wall-clock seconds spent in the backend (building included).
    pub seconds: f64,
}

impl LinearProgram {
    /// Adds a column and returns its index.
    pub fn add_column(&mut self, lower: f64, upper: f64, cost: f64, integer: bool) -> usize {
        self.columns.push(Column {
            lower,
            upper,
            cost,
            integer,
        });
        self.columns.len() - 1
    }

    /// Adds a row.
    pub fn add_row(&mut self, coefficients: Vec<(usize, f64)>, sense: Sense, rhs: f64) {
        self.rows.push(Row {
            coefficients,
            sense,
            rhs,
        });
    }

    /// Number of non-zero coefficients in the rows.
    pub fn non_zeros(&self) -> usize {
        self.rows.iter().map(|r| r.coefficients.len()).sum()
    }

    /// Objective value of `values` (including the offset).
    pub fn objective_of(&self, values: &[f64]) -> f64 {
        self.objective_offset
            + self
                .columns
                .iter()
                .zip(values)
                .map(|(c, v)| c.cost * v)
                .sum::<f64>()
    }

    /// Checks that every number is finite (infinite bounds excepted) and indexes are in range.
    pub fn validate(&self) -> Result<()> {
        for (j, c) in self.columns.iter().enumerate() {
            if c.lower.is_nan() || c.upper.is_nan() || !c.cost.is_finite() || c.lower > c.upper {
                return Err(invalid(
                    format!("columns[{j}]"),
                    "bounds or cost not usable",
                ));
            }
        }
        for (i, r) in self.rows.iter().enumerate() {
            if !r.rhs.is_finite() {
                return Err(invalid(format!("rows[{i}].rhs"), "must be finite"));
            }
            if r.coefficients
                .iter()
                .any(|&(j, a)| j >= self.columns.len() || !a.is_finite())
            {
                return Err(invalid(
                    format!("rows[{i}].coefficients"),
                    "index out of range or not finite",
                ));
            }
        }
        Ok(())
    }

    /// Solves with `backend`, stopping after `time_limit_seconds`.
    ///
    /// Errors: `BackendUnavailable` if the backend is not compiled in; `InvalidInput` for
    /// integer columns on Clarabel; `Infeasible`; `TimeLimit` when no answer was found in time;
    /// `Backend` for any other backend failure.
    pub fn solve(&self, backend: Backend, time_limit_seconds: f64) -> Result<LpSolution> {
        self.solve_with(backend, time_limit_seconds, &[])
    }

    /// Solves with HiGHS, passing extra HiGHS options by name, as strings HiGHS parses
    /// (for example `("solver", "ipm")`, `("run_crossover", "off")`); they are applied after
    /// the time limit and the MIP gap, so they may override those (with a larger
    /// `mip_rel_gap`, `Optimal` means optimal within that gap). The benchmark uses this
    /// to run the same algorithm as a raw HiGHS run it compares against.
    ///
    /// Errors: as [`LinearProgram::solve`]; an unknown option or a value HiGHS rejects is a
    /// `Backend` error naming the option.
    #[cfg(feature = "highs")]
    pub fn solve_highs_with_options(
        &self,
        time_limit_seconds: f64,
        options: &[(&str, &str)],
    ) -> Result<LpSolution> {
        self.solve_with(Backend::Highs, time_limit_seconds, options)
    }

    /// [`LinearProgram::solve`] with extra HiGHS options (ignored by the other backends).
    fn solve_with(
        &self,
        backend: Backend,
        time_limit_seconds: f64,
        highs_options: &[(&str, &str)],
    ) -> Result<LpSolution> {
        self.validate()?;
        crate::error::positive("time_limit_seconds", time_limit_seconds)?;
        if !backend.is_available() {
            return Err(SolverError::BackendUnavailable(backend.name().into()));
        }
        if !backend.supports_integers() && self.columns.iter().any(|c| c.integer) {
            return Err(invalid(
                "backend",
                "clarabel cannot solve integer columns; use microlp or highs",
            ));
        }
        let start = Instant::now();
        let (vars, columns, objective) = self.to_good_lp();
        let problem = vars.minimise(objective);
        let outcome = match backend {
            Backend::Microlp => finish(
                self.with_rows(problem.using(good_lp::microlp), &columns)
                    .with_time_limit(time_limit_seconds)
                    .solve(),
                &columns,
                LpStatus::TimeLimit,
            ),
            Backend::Clarabel => {
                let mut model = problem.using(good_lp::clarabel);
                model.settings().time_limit(time_limit_seconds);
                finish(
                    self.with_rows(model, &columns).solve(),
                    &columns,
                    LpStatus::TimeLimit,
                )
            }
            Backend::Highs => {
                self.solve_highs(problem, &columns, time_limit_seconds, highs_options)
            }
        };
        let (status, values) = outcome.map_err(|e| map_error(e, backend, time_limit_seconds))?;
        Ok(LpSolution {
            status,
            objective: self.objective_of(&values),
            values,
            backend,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Builds and solves the HiGHS model.
    #[cfg(feature = "highs")]
    fn solve_highs(
        &self,
        problem: good_lp::variable::UnsolvedProblem,
        columns: &[Variable],
        seconds: f64,
        options: &[(&str, &str)],
    ) -> std::result::Result<(LpStatus, Vec<f64>), ResolutionError> {
        // HiGHS stops a MILP at a 1e-4 relative gap by default; the exact method takes a
        // MILP optimum as its own lower bound, so ask for a zero relative gap (the absolute
        // gap of 1e-6 still ends the search).
        let mut model = self
            .with_rows(problem.using(good_lp::highs), columns)
            .with_time_limit(seconds)
            .set_option("mip_rel_gap", 0.0);
        for &(key, value) in options {
            model = model.set_option(key, value);
        }
        // good_lp reports a HiGHS optimum with a positive gap as `GapLimit`: with the gaps
        // above that is an optimum within 1e-6, not an interrupted search.
        finish(model.solve(), columns, LpStatus::Optimal)
    }

    /// Stands in for HiGHS when the feature is off; `solve` refuses before calling it.
    #[cfg(not(feature = "highs"))]
    fn solve_highs(
        &self,
        _: good_lp::variable::UnsolvedProblem,
        _: &[Variable],
        _: f64,
        _: &[(&str, &str)],
    ) -> std::result::Result<(LpStatus, Vec<f64>), ResolutionError> {
        Err(ResolutionError::Str("highs feature not enabled".into()))
    }

    /// The columns and objective as good_lp values.
    fn to_good_lp(&self) -> (ProblemVariables, Vec<Variable>, Expression) {
        let mut vars = ProblemVariables::new();
        let mut columns = Vec::with_capacity(self.columns.len());
        let mut objective = Expression::with_capacity(self.columns.len());
        for c in &self.columns {
            let mut definition = variable();
            if c.lower.is_finite() {
                definition = definition.min(c.lower);
            }
            if c.upper.is_finite() {
                definition = definition.max(c.upper);
            }
            if c.integer {
                definition = definition.integer();
            }
            let v = vars.add(definition);
            if c.cost != 0.0 {
                objective.add_mul(c.cost, v);
            }
            columns.push(v);
        }
        (vars, columns, objective)
    }

    /// Adds every row to a backend model.
    fn with_rows<M: SolverModel>(&self, mut model: M, columns: &[Variable]) -> M {
        for row in &self.rows {
            let mut expression = Expression::with_capacity(row.coefficients.len());
            for &(j, a) in &row.coefficients {
                expression.add_mul(a, columns[j]);
            }
            let c = match row.sense {
                Sense::LessEqual => constraint::leq(expression, row.rhs),
                Sense::GreaterEqual => constraint::geq(expression, row.rhs),
                Sense::Equal => constraint::eq(expression, row.rhs),
            };
            model.add_constraint(c);
        }
        model
    }

    /// Writes the model in free MPS format (names R<i> and C<j>; integer columns in markers,
    /// bounds always explicit for them).
    pub fn to_mps(&self) -> String {
        let mut by_column: Vec<Vec<(usize, f64)>> = vec![Vec::new(); self.columns.len()];
        for (i, row) in self.rows.iter().enumerate() {
            for &(j, a) in &row.coefficients {
                by_column[j].push((i, a));
            }
        }
        let mut out = String::with_capacity(40 * (self.non_zeros() + self.columns.len()));
        out.push_str("NAME SPARES\nROWS\n N COST\n");
        for (i, row) in self.rows.iter().enumerate() {
            let kind = match row.sense {
                Sense::LessEqual => 'L',
                Sense::GreaterEqual => 'G',
                Sense::Equal => 'E',
            };
            let _ = writeln!(out, " {kind} R{i}");
        }
        out.push_str("COLUMNS\n");
        let mut in_integer_block = false;
        for (j, column) in self.columns.iter().enumerate() {
            if column.integer != in_integer_block {
                let marker = if column.integer { "INTORG" } else { "INTEND" };
                let _ = writeln!(out, " MARKER 'MARKER' '{marker}'");
                in_integer_block = column.integer;
            }
            if column.cost != 0.0 {
                let _ = writeln!(out, " C{j} COST {:e}", column.cost);
            }
            for &(i, a) in &by_column[j] {
                let _ = writeln!(out, " C{j} R{i} {a:e}");
            }
            if column.cost == 0.0 && by_column[j].is_empty() {
                let _ = writeln!(out, " C{j} COST 0");
            }
        }
        if in_integer_block {
            out.push_str(" MARKER 'MARKER' 'INTEND'\n");
        }
        out.push_str("RHS\n");
        if self.objective_offset != 0.0 {
            let _ = writeln!(out, " RHS COST {:e}", -self.objective_offset);
        }
        for (i, row) in self.rows.iter().enumerate() {
            if row.rhs != 0.0 {
                let _ = writeln!(out, " RHS R{i} {:e}", row.rhs);
            }
        }
        out.push_str("BOUNDS\n");
        for (j, c) in self.columns.iter().enumerate() {
            write_bounds(&mut out, j, c);
        }
        out.push_str("ENDATA\n");
        out
    }
}

/// Writes one column's bounds (MPS default is [0, +inf)).
fn write_bounds(out: &mut String, j: usize, c: &Column) {
    match (c.lower.is_finite(), c.upper.is_finite()) {
        (false, false) => {
            let _ = writeln!(out, " FR BND C{j}");
        }
        (false, true) => {
            let _ = writeln!(out, " MI BND C{j}");
            let _ = writeln!(out, " UP BND C{j} {:e}", c.upper);
        }
        (true, upper_finite) => {
            if c.lower != 0.0 || c.integer {
                let _ = writeln!(out, " LO BND C{j} {:e}", c.lower);
            }
            if upper_finite {
                let _ = writeln!(out, " UP BND C{j} {:e}", c.upper);
            } else if c.integer {
                let _ = writeln!(out, " PL BND C{j}");
            }
        }
    }
}

/// Reads the status and values of a backend solution; `gap_limit` is what the backend's
/// `GapLimit` status means here.
fn finish<S: Solution>(
    result: std::result::Result<S, ResolutionError>,
    columns: &[Variable],
    gap_limit: LpStatus,
) -> std::result::Result<(LpStatus, Vec<f64>), ResolutionError> {
    let solution = result?;
    let status = match solution.status() {
        SolutionStatus::Optimal => LpStatus::Optimal,
        SolutionStatus::TimeLimit => LpStatus::TimeLimit,
        SolutionStatus::GapLimit => gap_limit,
    };
    Ok((status, columns.iter().map(|v| solution.value(*v)).collect()))
}

/// Maps a backend error onto the crate's error.
fn map_error(error: ResolutionError, backend: Backend, seconds: f64) -> SolverError {
    let message = error.to_string();
    match error {
        ResolutionError::Infeasible => {
            SolverError::Infeasible(format!("{backend} reports the LP infeasible"))
        }
        // good_lp's HiGHS wrapper says this when a limit (here only the time limit) stopped
        // the search before any feasible point.
        ResolutionError::Other("NoSolutionFound") if backend == Backend::Highs => {
            SolverError::TimeLimit { seconds }
        }
        _ if message.to_ascii_lowercase().contains("time limit") => {
            SolverError::TimeLimit { seconds }
        }
        _ => SolverError::Backend {
            backend: backend.name().into(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// max 3x + 2y s.t. x + y <= 4, x + 3y <= 6, x <= 3 (as a minimisation): optimum x=3, y=1.
    fn small() -> LinearProgram {
        let mut lp = LinearProgram::default();
        let x = lp.add_column(0.0, 3.0, -3.0, false);
        let y = lp.add_column(0.0, f64::INFINITY, -2.0, false);
        lp.add_row(vec![(x, 1.0), (y, 1.0)], Sense::LessEqual, 4.0);
        lp.add_row(vec![(x, 1.0), (y, 3.0)], Sense::LessEqual, 6.0);
        lp
    }

    #[test]
    fn pure_rust_backends_agree() {
        for backend in [Backend::Microlp, Backend::Clarabel] {
            let solution = small().solve(backend, 10.0).unwrap();
            assert!(
                (solution.objective + 11.0).abs() < 1e-6,
                "{backend}: {}",
                solution.objective
            );
            assert_eq!(solution.status, LpStatus::Optimal);
        }
    }

    #[test]
    fn integer_columns_need_a_milp_backend() {
        let mut lp = LinearProgram::default();
        let x = lp.add_column(0.0, 10.0, -1.0, true);
        lp.add_row(vec![(x, 2.0)], Sense::LessEqual, 5.0);
        assert_eq!(
            lp.solve(Backend::Microlp, 10.0).unwrap().values[0].round(),
            2.0
        );
        assert!(lp.solve(Backend::Clarabel, 10.0).is_err());
    }

    #[test]
    fn infeasible_is_reported() {
        let mut lp = LinearProgram::default();
        let x = lp.add_column(0.0, 1.0, 1.0, false);
        lp.add_row(vec![(x, 1.0)], Sense::GreaterEqual, 2.0);
        assert!(matches!(
            lp.solve(Backend::Microlp, 10.0),
            Err(SolverError::Infeasible(_))
        ));
    }

    #[test]
    fn backend_names_parse_and_highs_is_feature_gated() {
        assert_eq!("Clarabel".parse::<Backend>().unwrap(), Backend::Clarabel);
        assert!("cbc".parse::<Backend>().is_err());
        if !cfg!(feature = "highs") {
            assert!(matches!(
                small().solve(Backend::Highs, 1.0),
                Err(SolverError::BackendUnavailable(_))
            ));
        }
    }

    /// A small knapsack-like MILP whose LP relaxation is fractional: max 5a + 4b + 3c
    /// s.t. 2a + 3b + c <= 6, 4a + b + 2c <= 11, 3a + 4b + 2c <= 8, integers in [0, 3]
    /// (the relaxation takes a = 8/3).
    fn small_milp() -> LinearProgram {
        let mut lp = LinearProgram::default();
        let a = lp.add_column(0.0, 3.0, -5.0, true);
        let b = lp.add_column(0.0, 3.0, -4.0, true);
        let c = lp.add_column(0.0, 3.0, -3.0, true);
        lp.add_row(vec![(a, 2.0), (b, 3.0), (c, 1.0)], Sense::LessEqual, 6.0);
        lp.add_row(vec![(a, 4.0), (b, 1.0), (c, 2.0)], Sense::LessEqual, 11.0);
        lp.add_row(vec![(a, 3.0), (b, 4.0), (c, 2.0)], Sense::LessEqual, 8.0);
        lp
    }

    /// Best objective of `small_milp` by enumerating every integer point.
    fn small_milp_by_enumeration() -> f64 {
        let lp = small_milp();
        let mut best = f64::INFINITY;
        for a in 0..=3 {
            for b in 0..=3 {
                for c in 0..=3 {
                    let values = [f64::from(a), f64::from(b), f64::from(c)];
                    let feasible = lp.rows.iter().all(|row| {
                        row.coefficients
                            .iter()
                            .map(|&(j, x)| x * values[j])
                            .sum::<f64>()
                            <= row.rhs
                    });
                    if feasible {
                        best = best.min(lp.objective_of(&values));
                    }
                }
            }
        }
        best
    }

    #[test]
    fn microlp_milp_matches_enumeration() {
        let best = small_milp_by_enumeration();
        let solution = small_milp().solve(Backend::Microlp, 10.0).unwrap();
        assert!(
            (solution.objective - best).abs() < 1e-9,
            "{solution:?} vs {best}"
        );
    }

    #[cfg(feature = "highs")]
    #[test]
    fn highs_agrees_with_the_pure_rust_backends() {
        let solution = small().solve(Backend::Highs, 10.0).unwrap();
        assert_eq!(solution.status, LpStatus::Optimal);
        assert_eq!(solution.backend, Backend::Highs);
        assert!(
            (solution.objective + 11.0).abs() < 1e-9,
            "{}",
            solution.objective
        );
        assert!((solution.values[0] - 3.0).abs() < 1e-9 && (solution.values[1] - 1.0).abs() < 1e-9);
    }

    #[cfg(feature = "highs")]
    #[test]
    fn highs_solves_a_milp_exactly() {
        let best = small_milp_by_enumeration();
        let solution = small_milp().solve(Backend::Highs, 10.0).unwrap();
        assert_eq!(solution.status, LpStatus::Optimal);
        assert!(
            (solution.objective - best).abs() < 1e-9,
            "{solution:?} vs {best}"
        );
        assert!(solution.values.iter().all(|v| (v - v.round()).abs() < 1e-6));
        // The relaxation is strictly better, so integrality was enforced.
        let mut relaxed = small_milp();
        relaxed.columns.iter_mut().for_each(|c| c.integer = false);
        let relaxation = relaxed.solve(Backend::Highs, 10.0).unwrap();
        assert!(
            relaxation.objective < best - 1e-6,
            "{} vs {best}",
            relaxation.objective
        );
    }

    #[cfg(feature = "highs")]
    #[test]
    fn highs_reports_infeasible_and_honours_options() {
        let mut lp = LinearProgram::default();
        let x = lp.add_column(0.0, 1.0, 1.0, false);
        lp.add_row(vec![(x, 1.0)], Sense::GreaterEqual, 2.0);
        assert!(matches!(
            lp.solve(Backend::Highs, 10.0),
            Err(SolverError::Infeasible(_))
        ));
        for options in [
            &[("solver", "ipm"), ("run_crossover", "off")][..],
            &[("solver", "ipm"), ("run_crossover", "on")],
            &[("solver", "simplex")],
        ] {
            let solution = small().solve_highs_with_options(10.0, options).unwrap();
            assert!(
                (solution.objective + 11.0).abs() < 1e-7,
                "{options:?}: {solution:?}"
            );
        }
        assert!(matches!(
            small().solve_highs_with_options(10.0, &[("no_such_option", "1")]),
            Err(SolverError::Backend { .. })
        ));
    }

    #[test]
    fn mps_lists_every_row_and_bound() {
        let text = small().to_mps();
        assert!(text.contains(" L R0") && text.contains(" L R1"));
        assert!(text.contains(" UP BND C0 3e0"));
        assert!(text.ends_with("ENDATA\n"));
    }
}
