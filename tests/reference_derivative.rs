//! The CPU reference's derivatives against central finite differences of the reference
//! forward, in f64: the oracle of the GPU derivative tests is checked against the definition,
//! not against a second copy of its own formulas.

mod common;

use common::TestRng;
use gumbel_wgpu::Mode;
use gumbel_wgpu::reference::{SamplePoint, gumbel_noise, jvp, softmax, vjp};

/// A row's logits (f64, some masked), its noise and a temperature.
struct Case {
    l: Vec<f64>,
    g: Vec<f64>,
    tau: f64,
}

impl Case {
    fn new(rng: &mut TestRng, cols: usize, masked: bool) -> Self {
        let l = (0..cols)
            .map(|k| {
                if masked && k % 3 == 1 {
                    f64::NEG_INFINITY
                } else {
                    rng.uniform(-3.0, 3.0)
                }
            })
            .collect();
        Self {
            l,
            g: gumbel_noise(rng.next_u64(), 0, cols),
            tau: rng.uniform(0.2f64.ln(), 5f64.ln()).exp(),
        }
    }

    /// z at logits l + h u and temperature tau + h s.
    fn z(&self, h: f64, u: &[f64], s: f64) -> Vec<Option<f64>> {
        self.l
            .iter()
            .zip(&self.g)
            .zip(u)
            .map(|((&l, g), u)| {
                (l != f64::NEG_INFINITY).then(|| (l + h * u + g) / (self.tau + h * s))
            })
            .collect()
    }

    fn out(&self, mode: Mode, h: f64, u: &[f64], s: f64) -> Vec<f64> {
        softmax(&self.z(h, u, s), mode == Mode::LogSoft)
    }

    fn masked(&self, k: usize) -> bool {
        self.l[k] == f64::NEG_INFINITY
    }
}

const H: f64 = 1e-5;

/// Central difference of the output along (u, s).
fn difference(case: &Case, mode: Mode, u: &[f64], s: f64) -> Vec<f64> {
    let plus = case.out(mode, H, u, s);
    let minus = case.out(mode, -H, u, s);
    plus.iter()
        .zip(&minus)
        .map(|(p, m)| {
            if p.is_finite() {
                (p - m) / (2.0 * H)
            } else {
                0.0
            }
        })
        .collect()
}

fn close(got: f64, want: f64, what: &str) {
    // Central differences are accurate to O(H^2) plus rounding of order 1e-16 / H.
    let tol = 1e-7 * (1.0 + want.abs());
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} vs finite difference {want}"
    );
}

#[test]
fn vjp_matches_finite_differences() {
    let mut rng = TestRng::new(1);
    for (cols, masked) in [(1, false), (2, false), (5, true), (17, true), (64, false)] {
        for mode in [Mode::Soft, Mode::LogSoft, Mode::Hard] {
            let case = Case::new(&mut rng, cols, masked);
            let dy: Vec<f64> = (0..cols).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let zero = vec![0.0; cols];
            let point = SamplePoint::from_z(&case.z(0.0, &zero, 0.0));
            let grad = vjp(&point, case.tau, mode, &dy);
            // The loss <dy, out> along each logit and along tau. Hard mode's backward is the
            // soft one's (straight-through), so its reference is the soft forward's difference.
            let fwd = if mode == Mode::Hard { Mode::Soft } else { mode };
            let loss = |u: &[f64], s: f64| -> f64 {
                difference(&case, fwd, u, s)
                    .iter()
                    .zip(&dy)
                    .enumerate()
                    .filter(|(k, _)| !case.masked(*k))
                    .map(|(_, (d, dy))| d * dy)
                    .sum()
            };
            for k in 0..cols {
                let what = format!("{mode:?} K={cols} dl[{k}]");
                if case.masked(k) {
                    assert_eq!(grad.dl[k], 0.0, "{what}: masked");
                    continue;
                }
                let mut e = zero.clone();
                e[k] = 1.0;
                close(grad.dl[k], loss(&e, 0.0), &what);
            }
            close(
                grad.dtau,
                loss(&zero, 1.0),
                &format!("{mode:?} K={cols} dtau"),
            );
        }
    }
}

#[test]
fn jvp_matches_finite_differences() {
    let mut rng = TestRng::new(2);
    for (cols, masked) in [(1, false), (3, false), (6, true), (33, true)] {
        for mode in [Mode::Soft, Mode::LogSoft, Mode::Hard] {
            let case = Case::new(&mut rng, cols, masked);
            let u: Vec<f64> = (0..cols).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let s = rng.uniform(-1.0, 1.0);
            let zero = vec![0.0; cols];
            let point = SamplePoint::from_z(&case.z(0.0, &zero, 0.0));
            let got = jvp(&point, case.tau, mode, &u, s);
            let fwd = if mode == Mode::Hard { Mode::Soft } else { mode };
            let want = difference(&case, fwd, &u, s);
            for k in 0..cols {
                close(got[k], want[k], &format!("{mode:?} K={cols} ydot[{k}]"));
            }
        }
    }
}

/// A saved sample gives the derivative at z: log y differs from z by a constant per row.
#[test]
fn saved_sample_gives_the_same_derivatives() {
    let mut rng = TestRng::new(3);
    for mode in [Mode::Soft, Mode::LogSoft] {
        let case = Case::new(&mut rng, 12, true);
        let zero = vec![0.0; 12];
        let z = case.z(0.0, &zero, 0.0);
        let at_z = SamplePoint::from_z(&z);
        let saved = SamplePoint::from_saved(&softmax(&z, mode == Mode::LogSoft), mode);
        let dy: Vec<f64> = (0..12).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let (a, b) = (
            vjp(&at_z, case.tau, mode, &dy),
            vjp(&saved, case.tau, mode, &dy),
        );
        for k in 0..12 {
            close(a.dl[k], b.dl[k], &format!("{mode:?} saved dl[{k}]"));
        }
        close(a.dtau, b.dtau, &format!("{mode:?} saved dtau"));
        let (a, b) = (
            jvp(&at_z, case.tau, mode, &dy, 0.7),
            jvp(&saved, case.tau, mode, &dy, 0.7),
        );
        for k in 0..12 {
            close(a[k], b[k], &format!("{mode:?} saved ydot[{k}]"));
        }
    }
}
