use super::*;

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.line.as_str()).collect()
}

#[test]
fn full_ring_drops_oldest_and_counts() {
    let ring = LogRing::new(3);
    for i in 0..5 {
        ring.push(line(
            format!("l{i}"),
            log_line::Source::App,
            log_line::Stream::Stdout,
        ));
    }
    let (lines, dropped) = ring.take(10);
    assert_eq!(texts(&lines), ["l2", "l3", "l4"]);
    assert_eq!(dropped, 2);
    // The count is reported once.
    assert_eq!(ring.take(10).1, 0);
    assert!(ring.is_empty());
}

#[test]
fn unshift_restores_order_within_bound() {
    let ring = LogRing::new(3);
    for i in 0..3 {
        ring.push(line(
            format!("l{i}"),
            log_line::Source::App,
            log_line::Stream::Stdout,
        ));
    }
    let (lines, dropped) = ring.take(2);
    ring.push(line(
        "new".into(),
        log_line::Source::App,
        log_line::Stream::Stdout,
    ));
    ring.unshift(lines, dropped);
    let (lines, dropped) = ring.take(10);
    // One of the two restored lines no longer fits: it is counted, not silently lost.
    assert_eq!(texts(&lines), ["l1", "l2", "new"]);
    assert_eq!(dropped, 1);
}

#[test]
fn tee_copies_bytes_and_splits_lines() {
    let ring = LogRing::new(100);
    let input: &[u8] = b"one\ntwo\r\n\nthree-without-newline";
    let mut out = Vec::new();
    tee_to_ring(input, &mut out, log_line::Stream::Stderr, &ring);
    assert_eq!(out, input);
    let (lines, _) = ring.take(10);
    assert_eq!(texts(&lines), ["one", "two", "", "three-without-newline"]);
    assert!(
        lines
            .iter()
            .all(|l| l.stream == log_line::Stream::Stderr as i32)
    );
    assert!(
        lines
            .iter()
            .all(|l| l.source == log_line::Source::App as i32)
    );
}

#[test]
fn tee_splits_runaway_lines() {
    let ring = LogRing::new(100);
    let input = vec![b'x'; MAX_LINE * 2 + 5];
    tee_to_ring(&input[..], std::io::sink(), log_line::Stream::Stdout, &ring);
    let (lines, _) = ring.take(10);
    let lens: Vec<usize> = lines.iter().map(|l| l.line.len()).collect();
    assert_eq!(lens, [MAX_LINE, MAX_LINE, 5]);
}

#[tokio::test]
async fn shipper_batches_and_restores_on_closed_stream() {
    let ring = LogRing::new(100);
    for i in 0..3 {
        ring.push(line(
            format!("l{i}"),
            log_line::Source::App,
            log_line::Stream::Stdout,
        ));
    }
    let (tx, mut rx) = mpsc::channel(1);
    let task = tokio::spawn(ship(ring.clone(), tx, "D".into(), "I".into()));
    let batch = rx.recv().await.unwrap();
    assert_eq!(texts(&batch.lines), ["l0", "l1", "l2"]);
    assert_eq!(
        (batch.deployment_id.as_str(), batch.instance_id.as_str()),
        ("D", "I")
    );
    drop(rx);
    ring.push(line(
        "after".into(),
        log_line::Source::App,
        log_line::Stream::Stdout,
    ));
    task.await.unwrap();
    let (lines, _) = ring.take(10);
    assert_eq!(texts(&lines), ["after"]);
}

#[test]
fn a_busy_splitter_costs_lines_not_app_time() {
    let ring = LogRing::new(100);
    // No splitter running: the queue fills, then chunks are dropped and their lines counted.
    let queue = ChunkQueue::new(2);
    let big = vec![b'x'; CHUNK_QUEUE_BYTES];
    tee(
        &big[..],
        std::io::sink(),
        log_line::Stream::Stdout,
        &queue,
        &ring,
    );
    tee(
        &b"a\nb\nc\n"[..],
        std::io::sink(),
        log_line::Stream::Stdout,
        &queue,
        &ring,
    );
    assert_eq!(ring.take(10), (vec![], 3));
}

#[test]
fn lines_cut_across_chunks_are_joined_per_stream() {
    let ring = LogRing::new(100);
    let queue = ChunkQueue::new(0);
    let at = now();
    for (stream, data) in [
        (log_line::Stream::Stdout, &b"hel"[..]),
        (log_line::Stream::Stderr, b"err\n"),
        (log_line::Stream::Stdout, b"lo\nwor"),
    ] {
        queue
            .offer(Chunk {
                stream,
                data: data.to_vec(),
                at,
            })
            .unwrap();
    }
    split_lines(&queue, &ring);
    let (lines, _) = ring.take(10);
    assert_eq!(texts(&lines), ["err", "hello", "wor"]);
}

#[tokio::test]
async fn config_errors_ship_when_they_change_and_again_on_a_new_connection() {
    let ring = LogRing::new(100);
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(ship(ring.clone(), tx, "D".into(), "I".into()));
    ring.set_config_errors(vec!["DB: not found".into()]);
    let b = rx.recv().await.unwrap();
    assert!(b.config_errors_set);
    assert_eq!(b.config_errors, ["DB: not found"]);
    // The same set again is no change; a line ships without a set.
    ring.set_config_errors(vec!["DB: not found".into()]);
    ring.push(line(
        "l".into(),
        log_line::Source::App,
        log_line::Stream::Stdout,
    ));
    let b = rx.recv().await.unwrap();
    assert_eq!(texts(&b.lines), ["l"]);
    assert!(!b.config_errors_set);
    // Fixed: an empty set, marked as set.
    ring.set_config_errors(vec![]);
    let b = rx.recv().await.unwrap();
    assert!(b.config_errors_set && b.config_errors.is_empty());
    ring.set_config_errors(vec!["X: y".into()]);
    assert_eq!(rx.recv().await.unwrap().config_errors, ["X: y"]);
    task.abort();
    // A new connection starts with the current set.
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(ship(ring.clone(), tx, "D".into(), "I".into()));
    let b = rx.recv().await.unwrap();
    assert!(b.config_errors_set);
    assert_eq!(b.config_errors, ["X: y"]);
    task.abort();
}
