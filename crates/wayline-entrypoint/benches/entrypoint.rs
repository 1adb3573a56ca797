//! Entrypoint figures: run with `cargo bench -p wayline-entrypoint`.

fn main() {
    let exe = env!("CARGO_BIN_EXE_wayline-entrypoint");
    let size = std::fs::metadata(exe).map_or(0, |m| m.len());
    println!(
        "binary size (this profile): {:.2} MiB  {exe}",
        size as f64 / 1_048_576.0
    );
}
