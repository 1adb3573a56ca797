fn main() {
    let path = std::env::args().nth(1).unwrap();
    match wayline_config::load_file(&path) {
        Err(d) => print!("{d}"),
        Ok(c) => {
            let inputs = wayline_config::EvalInputs {
                workspace: "default".into(),
                ..Default::default()
            };
            let d = wayline_config::EvalContext::validate(&c, &inputs);
            print!("validate: {d}");
            for app in &c.apps {
                let ctx = wayline_config::EvalContext::new(
                    &c,
                    &wayline_config::EvalInputs {
                        app: Some(app.name.clone()),
                        ..inputs.clone()
                    },
                )
                .unwrap();
                let u = app.deploy.evaluate_use(
                    &ctx,
                    &serde_json::json!({"artifact": {"image": "img", "tag": "t"}}),
                );
                match u {
                    Ok(u) => println!("{} {}", u.plugin, u.body),
                    Err(d) => print!("{d}"),
                }
                println!("{:?}", ctx.config_vars());
            }
        }
    }
}
