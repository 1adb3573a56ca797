//! A file with thousands of apps loads and validates in time linear in its size (issue 10:
//! it was quadratic). The timing figure is in `benches/load.rs`; this asserts the result.

use std::fmt::Write as _;

use wayline_config::{EvalInputs, Format, parse_str, validate_str};

/// A generated file of about `bytes` bytes: one app per ~200 bytes.
fn many_apps(bytes: usize) -> (String, usize) {
    let mut s = String::from("project = \"big\"\n");
    let mut n = 0;
    while s.len() < bytes {
        let _ = write!(
            s,
            "app \"svc-{n}\" {{\n  labels = {{ \"tier\" = \"backend\" }}\n  build {{\n    use \"docker\" {{}}\n  }}\n  deploy {{\n    use \"docker\" {{\n      service_port = {}\n    }}\n  }}\n}}\n",
            3000 + n % 1000
        );
        n += 1;
    }
    (s, n)
}

#[test]
fn a_file_with_thousands_of_apps_loads_and_validates() {
    let (src, n) = many_apps(2 << 20);
    let config = parse_str(&src, "big.hcl", Format::Hcl).unwrap();
    assert_eq!(config.apps.len(), n);
    assert_eq!(config.apps[n - 1].name, format!("svc-{}", n - 1));
    let diags = validate_str(
        &src,
        "big.hcl",
        Format::Hcl,
        std::path::Path::new("."),
        &EvalInputs::default(),
    );
    assert!(!diags.has_errors(), "{diags}");
}
