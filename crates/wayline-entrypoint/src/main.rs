//! The `wayline-entrypoint` binary: see the library docs.

use wayline_entrypoint::{logger::Logger, settings};

fn main() {
    let argv = match settings::parse_args(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wayline-entrypoint: {e}");
            std::process::exit(2);
        }
    };
    if argv.len() == 1 && argv[0] == "--version" {
        println!("wayline-entrypoint {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let settings = match settings::Settings::from_env(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wayline-entrypoint: {e}");
            std::process::exit(2);
        }
    };
    let logger: &'static Logger = Box::leak(Box::new(Logger::new(settings.log_level)));
    let _ = tracing::subscriber::set_global_default(logger);
    std::process::exit(wayline_entrypoint::run(argv, settings, logger));
}
