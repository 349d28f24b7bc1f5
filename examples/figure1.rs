//! Figure 1 of Jang, Gu and Poole (2017), drawn with the GPU kernels: for one categorical
//! distribution, the expected value of the Gumbel-Softmax sample (top row) and one sample
//! (bottom row) at tau = 0.1, 0.5, 1 and 10, beside the categorical itself (its probabilities,
//! and a one-hot Gumbel-max sample). As tau grows the expectation flattens towards uniform and
//! the samples become smooth; as tau falls they approach the categorical and its one-hot draws.
//!
//! `cargo run --release --example figure1 [-- --rows N] [--out FILE]` writes `figure1.svg`.

use std::fmt::Write as _;

use gumbel_wgpu::{GpuContext, Mode, SampleArgs};

const PROBABILITIES: [f64; 5] = [0.1, 0.05, 0.45, 0.25, 0.15];
const TAUS: [f32; 4] = [0.1, 0.5, 1.0, 10.0];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let rows: u32 = option("--rows").map_or(Ok(100_000), |s| s.parse())?;
    let path = option("--out").map_or("figure1.svg", String::as_str);
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.summary());

    let k = PROBABILITIES.len();
    let logits: Vec<f32> = PROBABILITIES.iter().map(|p| p.ln() as f32).collect();
    let batch: Vec<f32> = (0..rows).flat_map(|_| logits.iter().copied()).collect();
    // Column 0: the categorical; its sample is a Gumbel-max draw.
    let index = ctx.sample_indices(&logits, &SampleArgs::new(1, k as u32, 1.0, 7))?[0] as usize;
    let mut panels = vec![(
        "Categorical".to_owned(),
        PROBABILITIES.to_vec(),
        (0..k).map(|c| if c == index { 1.0 } else { 0.0 }).collect(),
    )];
    for (i, &tau) in TAUS.iter().enumerate() {
        let seed = 100 + i as u64;
        let samples = ctx.sample(
            &batch,
            Mode::Soft,
            &SampleArgs::new(rows, k as u32, tau, seed),
        )?;
        let mut mean = vec![0.0; k];
        for row in samples.chunks(k) {
            for (m, &y) in mean.iter_mut().zip(row) {
                *m += f64::from(y) / f64::from(rows);
            }
        }
        let single = samples[..k].iter().map(|&y| f64::from(y)).collect();
        println!("tau = {tau}: expectation {mean:.3?}");
        panels.push((format!("τ = {tau}"), mean, single));
    }
    std::fs::write(path, svg(&panels, rows))?;
    println!("wrote {path}");
    Ok(())
}

/// Two rows of bar charts, one column per panel: (title, expectation, one sample).
fn svg(panels: &[(String, Vec<f64>, Vec<f64>)], rows: u32) -> String {
    let (w, h, pad) = (170.0, 130.0, 30.0);
    let width = pad + panels.len() as f64 * w;
    let height = 2.0 * h + 2.0 * pad + 20.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (row, label) in [
        (0, format!("expectation ({rows} samples)")),
        (1, "one sample".to_owned()),
    ] {
        let y0 = pad + 20.0 + row as f64 * (h + pad);
        let _ = writeln!(
            out,
            r#"<text x="4" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">{label}</text>"#,
            y0 + h / 2.0,
            y0 + h / 2.0
        );
        for (i, (title, mean, sample)) in panels.iter().enumerate() {
            let x0 = pad + i as f64 * w;
            let values = if row == 0 { mean } else { sample };
            if row == 0 {
                let _ = writeln!(
                    out,
                    r#"<text x="{}" y="{}" text-anchor="middle">{title}</text>"#,
                    x0 + w / 2.0,
                    pad
                );
            }
            let (plot_w, plot_h) = (w - 20.0, h - 10.0);
            let _ = writeln!(
                out,
                r##"<rect x="{x0}" y="{y0}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>"##
            );
            let bar = plot_w / values.len() as f64;
            for (c, &v) in values.iter().enumerate() {
                let bh = v.clamp(0.0, 1.0) * plot_h;
                let _ = writeln!(
                    out,
                    r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#3b6ea8"/>"##,
                    x0 + c as f64 * bar + 2.0,
                    y0 + plot_h - bh,
                    bar - 4.0
                );
            }
        }
    }
    out.push_str("</svg>\n");
    out
}
