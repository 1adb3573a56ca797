//! Who may call what: one table from each RPC of `wayline.v1.Wayline` to the token kinds it
//! accepts, and the one door every call goes through ([`Shared::admit`]): count, authenticate,
//! check the token kind against the table, then bound the request ([`super::limits`]).
//!
//! Checks that depend on the request's content (an entrypoint token's own deployment, a runner
//! token's own runner id, a runner token's config scopes) stay with the RPC, since they need
//! the message; the kind of token is decided here only.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tonic::{Request, Status};

use super::Shared;
use super::limits::Bounded;
use crate::auth::{Claims, TokenKind};

/// The token kinds an RPC accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// No token needed (the token, if any, is the request itself).
    Anyone,
    /// A login token.
    Login,
    /// A login or runner token.
    Runner,
    /// A login or runner token, or none: an unknown runner registers and waits for adoption.
    RunnerOrAnonymous,
    /// An entrypoint token (of the deployment the request names).
    Entrypoint,
}

/// Every RPC of `wayline.v1.Wayline`, in the order of `wayline.proto`, with who may call it.
/// A test checks this against the service definition, so a new RPC cannot be left out.
pub(super) const RPCS: &[(&str, Access)] = &[
    ("GetVersionInfo", Access::Anyone),
    // Answers once, to the first caller; then PERMISSION_DENIED.
    ("BootstrapToken", Access::Anyone),
    ("GenerateLoginToken", Access::Login),
    ("GenerateInviteToken", Access::Login),
    // The invite token is the request body.
    ("ConvertInviteToken", Access::Anyone),
    ("GenerateRunnerToken", Access::Login),
    ("GenerateEntrypointToken", Access::Runner),
    ("RevokeToken", Access::Login),
    ("GetUser", Access::Login),
    ("ListWorkspaces", Access::Runner),
    ("GetWorkspace", Access::Runner),
    ("UpsertProject", Access::Login),
    ("GetProject", Access::Runner),
    ("ListProjects", Access::Runner),
    ("DestroyProject", Access::Login),
    ("UpsertApplication", Access::Runner),
    ("UpsertBuild", Access::Runner),
    ("ListBuilds", Access::Runner),
    ("UpsertPushedArtifact", Access::Runner),
    ("ListPushedArtifacts", Access::Runner),
    ("UpsertDeployment", Access::Runner),
    ("ListDeployments", Access::Runner),
    ("UpsertRelease", Access::Runner),
    ("ListReleases", Access::Runner),
    ("UpsertStatusReport", Access::Runner),
    ("ListStatusReports", Access::Runner),
    ("GetOperation", Access::Runner),
    ("CheckDeploymentHealth", Access::Runner),
    ("SetCanary", Access::Login),
    ("ListCanaries", Access::Runner),
    ("ListUrlTunnels", Access::Login),
    ("ListInstances", Access::Login),
    ("GetLogStream", Access::Login),
    ("StartExecStream", Access::Login),
    // A runner token may set project and app scopes only (checked in the RPC).
    ("SetConfig", Access::Runner),
    ("GetConfig", Access::Runner),
    ("SetConfigSource", Access::Login),
    ("GetConfigSource", Access::Runner),
    ("CreateHostname", Access::Login),
    ("DeleteHostname", Access::Login),
    ("ListHostnames", Access::Login),
    ("QueueJob", Access::Login),
    ("CancelJob", Access::Login),
    ("GetJob", Access::Runner),
    ("ListJobs", Access::Runner),
    ("ValidateJob", Access::Login),
    ("GetJobStream", Access::Login),
    // An adopted runner's id only with that runner's token (checked in the RPC).
    ("RunnerConfig", Access::RunnerOrAnonymous),
    ("RunnerJobStream", Access::Runner),
    ("ListRunners", Access::Login),
    ("GetRunner", Access::Login),
    ("AdoptRunner", Access::Login),
    ("ForgetRunner", Access::Login),
    ("EntrypointConfig", Access::Entrypoint),
    ("EntrypointLogStream", Access::Entrypoint),
    ("EntrypointExecStream", Access::Entrypoint),
    ("GetServerConfig", Access::Runner),
    ("SetServerConfig", Access::Login),
    ("CreateSnapshot", Access::Login),
    ("RestoreSnapshot", Access::Login),
    ("UpsertTrigger", Access::Login),
    ("ListTriggers", Access::Login),
    ("RunPipeline", Access::Login),
];

fn access_of(method: &str) -> Option<Access> {
    RPCS.iter().find(|(m, _)| *m == method).map(|(_, a)| *a)
}

/// Request counters for `/metrics`.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<&'static str, u64>>,
    pub(crate) denied: AtomicU64,
}

impl Metrics {
    fn count(&self, method: &'static str) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry(method)
            .or_insert(0) += 1;
    }

    /// (method, count) pairs.
    pub(crate) fn requests(&self) -> Vec<(&'static str, u64)> {
        self.requests
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }
}

impl Shared {
    /// The door of every RPC: counts the call, checks its token against [`RPCS`], then the
    /// request's bounds. `None` claims: an [`Access::Anyone`] RPC, or a runner registering
    /// without a token.
    pub(super) fn admit<T: Bounded>(
        &self,
        req: &Request<T>,
        method: &'static str,
    ) -> Result<Option<Claims>, Status> {
        self.metrics.count(method);
        let r = self
            .check(req, method)
            .and_then(|c| req.get_ref().bounds().map(|()| c));
        if r.is_err() {
            self.metrics.denied.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// [`Shared::admit`] for RPCs that always need a token.
    pub(super) fn admit_token<T: Bounded>(
        &self,
        req: &Request<T>,
        method: &'static str,
    ) -> Result<Claims, Status> {
        self.admit(req, method)?
            .ok_or_else(|| Status::internal(format!("{method} is admitted without a token")))
    }

    fn check<T>(&self, req: &Request<T>, method: &'static str) -> Result<Option<Claims>, Status> {
        let Some(access) = access_of(method) else {
            return Err(Status::internal(format!(
                "{method} is missing from the access table"
            )));
        };
        let token = crate::auth::bearer(req.metadata())?;
        let token = match (access, token) {
            (Access::Anyone, _) | (Access::RunnerOrAnonymous, None) => return Ok(None),
            (_, Some(t)) => t,
            (_, None) => {
                return Err(Status::unauthenticated(format!(
                    "{method} needs a token: send `authorization: Bearer <token>` (get one with `wayline server bootstrap` or `wayline user token`)"
                )));
            }
        };
        let claims = self.tokens.verify(token)?;
        let ok = match access {
            Access::Anyone => true,
            Access::Login => claims.kind == TokenKind::Login,
            Access::Runner | Access::RunnerOrAnonymous => {
                matches!(claims.kind, TokenKind::Login | TokenKind::Runner)
            }
            Access::Entrypoint => claims.kind == TokenKind::Entrypoint,
        };
        if ok {
            return Ok(Some(claims));
        }
        Err(denied(claims.kind, access, method))
    }
}

fn denied(kind: TokenKind, access: Access, method: &str) -> Status {
    Status::permission_denied(match (kind, access) {
        (TokenKind::Entrypoint, _) => format!(
            "an entrypoint token can only call the entrypoint RPCs of its own deployment, not {method}"
        ),
        (_, Access::Entrypoint) => {
            format!(
                "{method} needs the entrypoint token of a deployment (WAYLINE_ENTRYPOINT_TOKEN)"
            )
        }
        (TokenKind::Runner, _) => {
            format!("a runner token cannot call {method}; use a login token")
        }
        (TokenKind::Invite, _) => format!(
            "an invite token cannot call {method}; exchange it with ConvertInviteToken (`wayline login`)"
        ),
        (kind, _) => format!(
            "a {} token cannot call {method}; use a login token",
            kind.name()
        ),
    })
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    /// The table names every RPC of the service, once, in the order of `wayline.proto`.
    #[test]
    fn the_table_covers_every_rpc() {
        let set = prost_types::FileDescriptorSet::decode(wayline_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let service = set
            .file
            .iter()
            .flat_map(|f| &f.service)
            .find(|s| s.name() == "Wayline")
            .expect("the Wayline service");
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let table: Vec<&str> = RPCS.iter().map(|(m, _)| *m).collect();
        assert_eq!(table, methods);
    }
}
