//! The reference docs of the `docker-swarm` components (`wayline plugin docs docker-swarm`).

use wayline_plugin::{Docs, Documented, FieldDoc};

use super::platform::SwarmPlatform;
use super::release::SwarmRelease;
use crate::docker::{auth_fields, client_fields};

impl Documented for SwarmPlatform {
    fn docs() -> Docs {
        Docs {
            description: "Runs each deployment as a Docker Swarm service of its own, `<app>-v<N>`, labelled with the \
                server id, project, app, workspace and deployment id; earlier deployments keep running. The manager \
                is found like the Docker CLI finds it (`DOCKER_HOST`, `DOCKER_CERT_PATH`, `DOCKER_TLS_VERIFY`) or \
                from `host` / `client_config`. Every node must be able to pull the image: an image that exists only \
                in the local engine is refused unless the swarm has one node; with a registry that recorded a digest, \
                tasks run `image@digest`. Each task's entrypoint dials the server's advertised TCP address \
                (`wayline server run -advertise-addr`), so logs (which name task and node), exec and config work on \
                every node. Deploy waits until every task runs and fails at once with Swarm's reason when a task is \
                rejected (a node can't pull) or can't be placed. A fixed published port held by an older deployment \
                of the app is freed by scaling that one to 0 (release scales it back: rollback). Without IPVS in the \
                kernel the routing mesh and VIPs don't work: publish in `host` mode with `endpoint_mode = \"dnsrr\"`. \
                Destroy removes the service and waits until no node runs its tasks."
                .into(),
            example: "deploy {\n  use \"docker-swarm\" {\n    replicas      = 3\n    service_port  = 3000\n    endpoint_mode = \"dnsrr\"\n    ports {\n      target    = 3000\n      published = 18080\n      mode      = \"host\"\n    }\n  }\n}".into(),
            fields: vec![
                FieldDoc::new("replicas", "number", "Tasks of the service.").default_value("1"),
                FieldDoc::new("service_port", "number", "Port the app listens on; exported as `PORT`.").default_value("3000"),
                FieldDoc::block("ports", "A published port (repeatable).", port_fields()),
                FieldDoc::new("endpoint_mode", "string", "`vip` or `dnsrr`.").default_value("vip"),
                FieldDoc::new("env", "map(string)", "Extra environment; Swarm templates such as `{{.Node.Hostname}}` work."),
                FieldDoc::new("static_environment", "map(string)", "The same as `env` (the `docker` platform's name)."),
                FieldDoc::new("labels", "map(string)", "Extra service and container labels."),
                FieldDoc::new("command", "list(string)", "Arguments instead of the image's CMD."),
                FieldDoc::new("networks", "list(string)", "Existing overlay networks to attach to."),
                FieldDoc::block("mounts", "A mount (repeatable).", vec![
                    FieldDoc::new("type", "string", "`volume`, `bind` or `tmpfs`.").default_value("volume"),
                    FieldDoc::new("source", "string", "Volume name or host path."),
                    FieldDoc::new("target", "string", "Path in the task.").required(),
                    FieldDoc::new("read_only", "bool", "Read-only.").default_value("false"),
                ]),
                FieldDoc::new("secrets", "list(string)", "Existing Swarm secrets, at `/run/secrets/<name>`."),
                FieldDoc::new("resources", "map(string)", "Limits per task: `cpu` (cores, e.g. `0.5`), `memory` (MB)."),
                FieldDoc::block("placement", "Where tasks may run.", vec![
                    FieldDoc::new("constraints", "list(string)", "E.g. `node.role == worker`."),
                    FieldDoc::new("spread", "list(string)", "Spread preferences, e.g. `node.labels.zone`."),
                    FieldDoc::new("max_replicas_per_node", "number", "At most this many tasks per node."),
                ]),
                FieldDoc::block("update_config", "Swarm's update config.", update_fields()),
                FieldDoc::block("restart_policy", "Swarm's restart policy.", vec![
                    FieldDoc::new("condition", "string", "`none`, `on-failure` or `any`."),
                    FieldDoc::new("delay", "string", "Between restarts."),
                    FieldDoc::new("max_attempts", "number", "Restarts before giving up."),
                    FieldDoc::new("window", "string", "Window restarts are counted over."),
                ]),
                FieldDoc::new("stop_signal", "string", "Signal that stops a task."),
                FieldDoc::new("stop_grace_period", "string", "Time to stop before SIGKILL, e.g. `10s`."),
                FieldDoc::block("health_check", "Container health check.", vec![
                    FieldDoc::new("test", "list(string)", "`[\"CMD\", …]` or `[\"CMD-SHELL\", \"…\"]`.").required(),
                    FieldDoc::new("interval", "string", "Between checks."),
                    FieldDoc::new("timeout", "string", "Per check."),
                    FieldDoc::new("retries", "number", "Failures before unhealthy."),
                    FieldDoc::new("start_period", "string", "Grace after start."),
                ]),
                FieldDoc::new("wait_timeout", "string", "How long deploy waits for every task to run.").default_value("120s"),
                FieldDoc::new("host", "string", "The manager, `unix:///path` or `tcp://host:port`.").default_value("`DOCKER_HOST`"),
                FieldDoc::block("auth", "Credentials the nodes pull the image with.", auth_fields()),
                FieldDoc::block("client_config", "How to reach the manager.", client_fields()),
            ],
            template_fields: vec![
                ("service_id".into(), "Swarm's service id".into()),
                ("name".into(), "the service name".into()),
                ("url".into(), "`http://<node>:<published port>`".into()),
            ],
        }
    }
}

impl Documented for SwarmRelease {
    fn docs() -> Docs {
        Docs {
            description: "Releases a `docker-swarm` deployment (the platform's default release manager). Which way \
                runs when: without a `release` stanza, or with one that has no `ports`, the release is the \
                deployment's own service: it checks the service is the app's and, for an older deployment that was \
                scaled to 0 because a newer one took its published ports, frees them and scales it back (rollback); \
                with the URL service (the server's default) the runner first checks the deployment's health through \
                it and the app's host `app.<domain>` then routes to the new deployment's tasks. With `ports`, one \
                stable service per app (`<app>`, or `service`) publishes them and runs the released deployment's \
                task template; each release or rollback moves it by a rolling update (one task at a time, \
                `stop-first`, each new task watched 5s, `rollback` on failure; a task counts once it runs and, with \
                a `health_check`, is healthy). A failed update leaves it on the previous deployment and the release \
                fails with Swarm's reason. The deployments' own services keep running beside it (each answers at its \
                own ports, if it publishes any); destroying the deployment the stable service runs removes it."
                .into(),
            example: "release {\n  use \"docker-swarm\" {\n    endpoint_mode = \"dnsrr\"\n    ports {\n      target    = 3000\n      published = 80\n      mode      = \"host\"\n    }\n  }\n}".into(),
            fields: vec![
                FieldDoc::block("ports", "A port the stable service publishes (repeatable); none: no stable service.", port_fields()),
                FieldDoc::new("endpoint_mode", "string", "The stable service's `vip` or `dnsrr`.").default_value("vip"),
                FieldDoc::new("service", "string", "The stable service's name.").default_value("the app's name"),
                FieldDoc::block("update_config", "How the stable service's rolling update proceeds.", update_fields()),
                FieldDoc::new("wait_timeout", "string", "How long a release may take (scaling back up, or the rolling update).").default_value("120s"),
                FieldDoc::block("auth", "Credentials the nodes pull the image with (stable service).", auth_fields()),
                FieldDoc::new("host", "string", "The manager.").default_value("`DOCKER_HOST`"),
                FieldDoc::block("client_config", "How to reach the manager.", client_fields()),
            ],
            template_fields: vec![("url".into(), "the released URL".into())],
        }
    }
}

fn port_fields() -> Vec<FieldDoc> {
    vec![
        FieldDoc::new("target", "number", "Port in the task.").required(),
        FieldDoc::new("published", "number", "Port on the nodes."),
        FieldDoc::new("protocol", "string", "`tcp`, `udp` or `sctp`.").default_value("tcp"),
        FieldDoc::new("mode", "string", "`ingress` (routing mesh) or `host`.")
            .default_value("ingress"),
    ]
}

fn update_fields() -> Vec<FieldDoc> {
    vec![
        FieldDoc::new("parallelism", "number", "Tasks updated at once."),
        FieldDoc::new("delay", "string", "Between batches, e.g. `5s`."),
        FieldDoc::new(
            "failure_action",
            "string",
            "`pause`, `continue` or `rollback`.",
        ),
        FieldDoc::new("monitor", "string", "Watch time per task."),
        FieldDoc::new("order", "string", "`stop-first` or `start-first`."),
    ]
}
