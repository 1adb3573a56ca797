//! `context`, `login` and `user`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use wayline_core::pb;

use super::{Env, describe_status};
use crate::cli::{ContextCmd, UserCmd};
use crate::context::{Contexts, ServerContext};
use crate::render;
use crate::render::say;
use crate::session;

pub(crate) async fn context(env: &Env, cmd: ContextCmd) -> Result<ExitCode> {
    let contexts = Contexts::open();
    match cmd {
        ContextCmd::Create {
            name,
            server_addr,
            token,
            tls,
            tls_skip_verify,
            set_default,
        } => {
            let _: wayline_runner::ServerAddr = server_addr.parse()?;
            let ctx = ServerContext {
                address: server_addr,
                token: token.unwrap_or_default(),
                tls,
                tls_skip_verify,
                embedded: false,
            };
            contexts.set(&name, &ctx)?;
            if set_default {
                contexts.set_default(&name)?;
            }
            say!(
                "Context `{name}` created{}.",
                if set_default {
                    " and set as the default"
                } else {
                    ""
                }
            );
        }
        ContextCmd::Use { name } => {
            contexts.set_default(&name)?;
            say!("Using context `{name}`.");
        }
        ContextCmd::List => list(env, &contexts)?,
        ContextCmd::Inspect { name } => inspect(env, &contexts, name)?,
        ContextCmd::Delete { name } => {
            contexts.delete(&name)?;
            say!("Context `{name}` deleted.");
        }
        ContextCmd::Verify { name } => verify(&contexts, name).await?,
        ContextCmd::Clear => {
            contexts.clear_default()?;
            say!("No default context; commands use your local server.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `context list`: every context, the default marked.
fn list(env: &Env, contexts: &Contexts) -> Result<()> {
    let default = contexts.default_name()?;
    let names = contexts.list()?;
    if env.global.json {
        let v: Vec<_> = names
            .iter()
            .map(|n| {
                let c = contexts.get(n).ok().flatten().unwrap_or_default();
                serde_json::json!({"name": n, "address": c.address, "default": default.as_deref() == Some(n.as_str())})
            })
            .collect();
        render::json(&serde_json::Value::Array(v));
    } else if names.is_empty() {
        say!("No contexts; commands use your local server, started on first use.");
    } else {
        let rows: Vec<Vec<String>> = names
            .iter()
            .map(|n| {
                let c = contexts.get(n).ok().flatten().unwrap_or_default();
                vec![
                    if default.as_deref() == Some(n.as_str()) {
                        "*".into()
                    } else {
                        String::new()
                    },
                    n.clone(),
                    c.address,
                ]
            })
            .collect();
        render::table(&["", "NAME", "ADDRESS"], &rows);
    }
    Ok(())
}

/// `context inspect [NAME]`: the named context, or the current one.
fn inspect(env: &Env, contexts: &Contexts, name: Option<String>) -> Result<()> {
    let (name, ctx) = match name {
        Some(n) => {
            let Some(c) = contexts.get(&n)? else {
                bail!("there is no context named `{n}`")
            };
            (n, c)
        }
        None => match contexts.current()? {
            Some(x) => x,
            None => bail!("no context is configured; commands use your local server"),
        },
    };
    if env.global.json {
        render::json(
            &serde_json::json!({"name": name, "address": ctx.address, "tls": ctx.tls, "tls_skip_verify": ctx.tls_skip_verify, "embedded": ctx.embedded, "has_token": !ctx.token.is_empty()}),
        );
    } else {
        say!("Context:          {name}");
        say!("Server address:   {}", ctx.address);
        say!("TLS:              {}", ctx.tls);
        say!("TLS skip verify:  {}", ctx.tls_skip_verify);
        say!(
            "Token:            {}",
            if ctx.token.is_empty() { "none" } else { "set" }
        );
        say!("Local server:     {}", ctx.embedded);
    }
    Ok(())
}

/// `context verify [NAME]`: connects with the context (made the default when named) and
/// checks its token.
async fn verify(contexts: &Contexts, name: Option<String>) -> Result<()> {
    if let Some(n) = &name {
        contexts.set_default(n)?;
    }
    let mut s = session::connect().await?;
    let info = s
        .client
        .get_version_info(())
        .await
        .map_err(|e| anyhow::anyhow!(describe_status(&e)))?
        .into_inner();
    s.client
        .get_user(())
        .await
        .map_err(|e| anyhow::anyhow!(describe_status(&e)))?;
    let version = info.info.map(|i| i.version).unwrap_or_default();
    say!(
        "Connected to {} (server {version}); the token is accepted.",
        s.context.address
    );
    Ok(())
}

pub(crate) async fn login(
    addr: Option<String>,
    token: String,
    tls_skip_verify: bool,
    name: String,
) -> Result<ExitCode> {
    let contexts = Contexts::open();
    let address = match addr {
        Some(a) => a,
        None => match contexts.current()? {
            Some((_, c)) => c.address,
            None => bail!("give the server address: `wayline login <host:port> -token <token>`"),
        },
    };
    let parsed: wayline_runner::ServerAddr = address.parse()?;
    let ctx = ServerContext {
        address,
        token,
        tls: matches!(parsed, wayline_runner::ServerAddr::Tcp(_)),
        tls_skip_verify,
        embedded: false,
    };
    // Exchange an invite token for a login token when that is what was given.
    let mut opts = wayline_runner::client::ConnectOptions::new(parsed);
    opts.tls = ctx.tls;
    opts.tls_skip_verify = ctx.tls_skip_verify;
    opts.token = Some(ctx.token.clone());
    let mut client = wayline_runner::client::connect(&opts).await?;
    let ctx = match client.get_user(()).await {
        Ok(_) => ctx,
        Err(_) => match client
            .convert_invite_token(pb::ConvertInviteTokenRequest {
                token: ctx.token.clone(),
            })
            .await
        {
            Ok(t) => ServerContext {
                token: t.into_inner().token,
                ..ctx
            },
            Err(e) => bail!("the server did not accept the token: {}", e.message()),
        },
    };
    contexts.set(&name, &ctx)?;
    contexts.set_default(&name)?;
    say!(
        "Logged in to {}; context `{name}` is now the default.",
        ctx.address
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn user(_env: &Env, cmd: UserCmd) -> Result<ExitCode> {
    let mut s = session::connect().await?;
    let token = match cmd {
        UserCmd::Token { expires_in } => {
            s.client
                .generate_login_token(pb::GenerateLoginTokenRequest { expires_in })
                .await
        }
        UserCmd::Invite { expires_in } => {
            s.client
                .generate_invite_token(pb::GenerateInviteTokenRequest { expires_in })
                .await
        }
    }
    .map_err(|e| anyhow::anyhow!(describe_status(&e)))?
    .into_inner()
    .token;
    say!("{token}");
    Ok(ExitCode::SUCCESS)
}
