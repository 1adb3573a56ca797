use base64::Engine as _;
use prost::Message;
use prost_types::Timestamp;

use super::choice::{BuilderKind, EngineFacts, choose, refused_for_lack};
use super::trace::{self, MAX_VERTICES, Progress, StatusResponse, Vertex, VertexLog};
use super::{BuildSpec, Out, Reader, build_path, without_wrappers};

pub(super) fn at(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

pub(super) fn vertex(digest: &str, name: &str) -> Vertex {
    Vertex {
        digest: digest.into(),
        inputs: Vec::new(),
        name: name.into(),
        cached: false,
        started: None,
        completed: None,
        error: String::new(),
    }
}

pub(super) fn log(digest: &str, msg: &str) -> VertexLog {
    VertexLog {
        vertex: digest.into(),
        timestamp: at(1, 0),
        stream: 1,
        msg: msg.as_bytes().to_vec(),
    }
}

pub(super) fn update(vertexes: Vec<Vertex>, logs: Vec<VertexLog>) -> StatusResponse {
    StatusResponse {
        vertexes,
        statuses: Vec::new(),
        logs,
    }
}

/// An update as the engine sends it: base64 of the protobuf bytes.
fn wire(u: &StatusResponse) -> String {
    base64::engine::general_purpose::STANDARD.encode(u.encode_to_vec())
}

#[test]
fn the_field_numbers_are_buildkit_s() {
    // Bytes as BuildKit writes them (control.proto): StatusResponse.vertexes = 1 holding
    // Vertex{digest = 1, name = 3, cached = 4, error = 7}, and logs = 3 holding
    // VertexLog{vertex = 1, stream = 3, msg = 4}.
    let vertex_bytes = [
        &[0x0a, 0x03][..],
        b"sha",
        &[0x1a, 0x03],
        b"RUN",
        &[0x20, 0x01],
        &[0x3a, 0x04],
        b"boom",
    ]
    .concat();
    let log_bytes = [&[0x0a, 0x03][..], b"sha", &[0x18, 0x02, 0x22, 0x02], b"hi"].concat();
    let mut bytes = vec![0x0a, u8::try_from(vertex_bytes.len()).unwrap()];
    bytes.extend(&vertex_bytes);
    bytes.extend([0x1a, u8::try_from(log_bytes.len()).unwrap()]);
    bytes.extend(&log_bytes);
    let aux = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let got = trace::decode(&aux).unwrap();
    let v = &got.vertexes[0];
    assert_eq!(
        (
            v.digest.as_str(),
            v.name.as_str(),
            v.cached,
            v.error.as_str()
        ),
        ("sha", "RUN", true, "boom")
    );
    let l = &got.logs[0];
    assert_eq!(
        (l.vertex.as_str(), l.stream, l.msg.as_slice()),
        ("sha", 2, &b"hi"[..])
    );
}

#[test]
fn bad_traces_are_errors_not_panics() {
    assert!(
        trace::decode("not base64!")
            .unwrap_err()
            .to_string()
            .starts_with("BuildKit progress is not base64")
    );
    let junk = base64::engine::general_purpose::STANDARD.encode([0x0a, 0x7f, 0x01]);
    assert!(
        trace::decode(&junk)
            .unwrap_err()
            .to_string()
            .starts_with("BuildKit progress does not decode")
    );
}

#[test]
fn steps_show_when_they_start_finish_or_come_from_the_cache() {
    let mut p = Progress::default();
    let mut from = vertex("sha256:a", "[1/2] COPY busybox /bin/busybox");
    from.cached = true;
    from.started = at(10, 0);
    from.completed = at(10, 0);
    let mut run = vertex("sha256:b", "[2/2] RUN make");
    run.started = at(10, 0);
    let decoded = trace::decode(&wire(&update(vec![from, run.clone()], Vec::new()))).unwrap();
    assert_eq!(
        p.lines(decoded),
        [
            "#1 [1/2] COPY busybox /bin/busybox CACHED",
            "#2 [2/2] RUN make"
        ]
    );
    // Log output: whole lines as they complete, the rest when the step ends.
    let logs = vec![log("sha256:b", "hello\nwor"), log("sha256:b", "ld\npart")];
    assert_eq!(p.lines(update(Vec::new(), logs)), ["#2 hello", "#2 world"]);
    run.completed = at(10, 400_000_000);
    assert_eq!(
        p.lines(update(vec![run.clone()], Vec::new())),
        ["#2 part", "#2 DONE 0.4s"]
    );
    // The same state again adds nothing.
    assert!(p.lines(update(vec![run], Vec::new())).is_empty());
    assert_eq!(p.failed(), None);
}

#[test]
fn a_failed_step_is_remembered_with_its_error() {
    let mut p = Progress::default();
    let mut run = vertex("sha256:b", "[2/2] RUN false");
    run.started = at(1, 0);
    run.completed = at(2, 0);
    run.error = "process \"false\" did not complete successfully: exit code: 1".into();
    assert_eq!(
        p.lines(update(vec![run], vec![log("sha256:b", "oops")])),
        [
            "#1 [2/2] RUN false",
            "#1 oops",
            "#1 ERROR: process \"false\" did not complete successfully: exit code: 1"
        ]
    );
    assert_eq!(
        p.failed(),
        Some((
            "[2/2] RUN false",
            "process \"false\" did not complete successfully: exit code: 1"
        ))
    );
}

#[test]
fn what_progress_keeps_is_bounded() {
    let mut p = Progress::default();
    let many: Vec<Vertex> = (0..=MAX_VERTICES)
        .map(|i| {
            let mut v = vertex(&format!("sha256:{i}"), "step");
            v.started = at(1, 0);
            v
        })
        .collect();
    let lines = p.lines(update(many, vec![log("sha256:over", "not shown\n")]));
    assert_eq!(lines.len(), MAX_VERTICES);
    assert_eq!(lines.last().unwrap(), &format!("#{MAX_VERTICES} step"));
    // A log line without an end is cut at MAX_LOG_LINE.
    let mut p = Progress::default();
    let long = "x".repeat(trace::MAX_LOG_LINE + 5);
    let lines = p.lines(update(Vec::new(), vec![log("sha256:a", &long)]));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].len(), "#1 ".len() + trace::MAX_LOG_LINE);
    assert_eq!(p.flush(), ["#1 xxxxx"]);
}

/// Feeds engine lines to a reader; returns the result and the lines shown.
fn read(lines: &[String]) -> (Result<String, String>, Vec<String>) {
    let shown = std::sync::Mutex::new(Vec::new());
    let out = |l: &str| shown.lock().unwrap().push(l.to_owned());
    let out: Out<'_> = &out;
    let mut reader = Reader::default();
    for l in lines {
        reader.line(l.as_bytes(), out);
    }
    let result = reader.finish(out).map_err(|e| e.to_string());
    (result, shown.into_inner().unwrap())
}

pub(super) fn trace_line(u: &StatusResponse) -> String {
    serde_json::json!({"id": "moby.buildkit.trace", "aux": wire(u)}).to_string()
}

#[test]
fn the_answer_gives_the_image_id_or_the_failed_step_s_error() {
    let mut run = vertex("sha256:b", "[2/2] RUN echo hi");
    run.started = at(1, 0);
    let ok = [
        trace_line(&update(vec![run.clone()], vec![log("sha256:b", "hi\n")])),
        r#"{"id":"moby.image.id","aux":{"ID":"sha256:abc"}}"#.to_owned(),
        r#"{"stream":"Successfully tagged x:1\n"}"#.to_owned(),
        "not json".to_owned(),
    ];
    let (result, shown) = read(&ok);
    assert_eq!(result.unwrap(), "sha256:abc");
    assert_eq!(
        shown,
        ["#1 [2/2] RUN echo hi", "#1 hi", "Successfully tagged x:1"]
    );

    run.completed = at(2, 0);
    run.error = "exit code: 3".into();
    let failed = [
        trace_line(&update(vec![run], Vec::new())),
        r#"{"errorDetail":{"message":"executor failed running [sh]: exit code: 3"},"error":"executor failed"}"#
            .to_owned(),
    ];
    assert_eq!(
        read(&failed).0.unwrap_err(),
        "docker build failed at `[2/2] RUN echo hi`: executor failed running [sh]: exit code: 3"
    );
    assert_eq!(
        read(&[]).0.unwrap_err(),
        "docker build failed: the engine did not report an image id"
    );
}

#[test]
fn the_request_carries_every_build_option() {
    let spec = BuildSpec {
        dockerfile: "sub dir/Dockerfile".into(),
        tag: Some("wayline.local/web:v1".into()),
        build_args: [("A".to_owned(), "b c".to_owned())].into(),
        target: Some("final".into()),
        platform: Some("linux/amd64".into()),
        no_cache: true,
        labels: [("wayline.app".to_owned(), "web".to_owned())].into(),
        credentials: None,
    };
    assert_eq!(
        build_path("1.41", &spec),
        "/v1.41/build?version=2&dockerfile=sub%20dir%2FDockerfile&t=wayline%2Elocal%2Fweb%3Av1\
         &nocache=1&buildargs=%7B%22A%22%3A%22b%20c%22%7D\
         &labels=%7B%22wayline%2Eapp%22%3A%22web%22%7D&platform=linux%2Famd64&target=final"
    );
    let bare = BuildSpec {
        dockerfile: "Dockerfile".into(),
        ..BuildSpec::default()
    };
    assert_eq!(
        build_path("1.39", &bare),
        "/v1.39/build?version=2&dockerfile=Dockerfile"
    );
}

fn engine(api: (u64, u64), os: &str) -> EngineFacts {
    EngineFacts { api, os: os.into() }
}

#[test]
fn the_builder_is_chosen_from_config_environment_and_engine() {
    let modern = engine((1, 41), "linux");
    let old = engine((1, 38), "linux");
    let windows = engine((1, 41), "windows");
    let line = |setting, env, e: &EngineFacts| {
        let c = choose(setting, env, e);
        (c.kind, c.line, c.warning)
    };
    let buildkit = (
        BuilderKind::BuildKit,
        "Building image with BuildKit".to_owned(),
        None,
    );
    let classic = |why: &str| {
        (
            BuilderKind::Classic,
            format!("Building image with the classic builder ({why})"),
            None,
        )
    };
    // Auto.
    assert_eq!(line(None, None, &modern), buildkit);
    assert_eq!(line(None, Some("1"), &modern), buildkit);
    assert_eq!(line(None, Some("0"), &modern), classic("DOCKER_BUILDKIT=0"));
    assert_eq!(
        line(None, Some("false"), &modern),
        classic("DOCKER_BUILDKIT=0")
    );
    assert_eq!(
        line(None, None, &old),
        classic("the engine cannot use BuildKit: its API version 1.38 is older than 1.39")
    );
    assert_eq!(
        line(None, None, &windows),
        classic(
            "the engine cannot use BuildKit: it runs on `windows`, and BuildKit builds need a linux engine"
        )
    );
    // The file's setting wins over the environment.
    assert_eq!(
        line(Some(false), None, &modern),
        classic("buildkit = false")
    );
    assert_eq!(line(Some(true), Some("0"), &modern), buildkit);
    // `buildkit = true` where the engine cannot: a warning, then the classic builder.
    let (kind, text, warning) = line(Some(true), None, &old);
    assert_eq!(
        (kind, text.as_str(), warning.as_deref()),
        (
            BuilderKind::Classic,
            "Building image with the classic builder (the engine cannot use BuildKit)",
            Some(
                "buildkit = true, but the engine cannot use BuildKit: its API version 1.38 is older than 1.39; building with the classic builder"
            )
        )
    );
}

#[test]
fn only_a_refusal_for_lack_of_buildkit_falls_back() {
    assert!(refused_for_lack(400, "buildkit not supported by daemon"));
    assert!(refused_for_lack(
        500,
        "BuilderVersion 2 is not supported by this version"
    ));
    assert!(!refused_for_lack(500, "no space left on device"));
    assert!(!refused_for_lack(404, "page not found: version"));
}

#[test]
fn buildkit_s_wrappers_come_off_a_dockerfile_s_error() {
    assert_eq!(
        without_wrappers(
            "failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 2: unknown instruction: BOGUS"
        ),
        "dockerfile parse error line 2: unknown instruction: BOGUS"
    );
    assert_eq!(
        without_wrappers("failed to solve: process did not complete"),
        "process did not complete"
    );
    assert_eq!(without_wrappers("exit code: 3"), "exit code: 3");
}
