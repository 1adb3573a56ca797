//! Work shared across the cores for large files (issue 10): parsing, decoding and checking
//! the parts of a file with tens of thousands of apps.

/// How many threads to share `work` units among: one per core (at most 8), one when the work is
/// smaller than `from`.
pub(crate) fn threads_for(work: usize, from: usize) -> usize {
    if work < from {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// `f` of each item, in order, each on a thread of its own (the first on this one). An item
/// whose thread cannot be had runs here; a panic in `f` goes on in the caller.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let Some((first, rest)) = items.split_first() else {
        return Vec::new();
    };
    let f = &f;
    std::thread::scope(|s| {
        let spawned: Vec<_> = rest
            .iter()
            .map(|item| {
                std::thread::Builder::new()
                    .name("wayline-config".into())
                    .spawn_scoped(s, move || f(item))
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        out.push(f(first));
        for (item, handle) in rest.iter().zip(spawned) {
            out.push(match handle {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => f(item),
            });
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_in_order_and_small_work_stays_on_one_thread() {
        let items: Vec<usize> = (0..5).collect();
        let here = std::thread::current().id();
        let out = super::map(&items, |i| (i * 10, std::thread::current().id() == here));
        assert_eq!(
            out.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
            [0, 10, 20, 30, 40]
        );
        // The first item runs on the calling thread, the others on threads of their own.
        assert!(out[0].1);
        assert!(out[1..].iter().all(|(_, on_caller)| !on_caller));
        assert!(super::map(&[] as &[usize], |i| *i).is_empty());
        assert_eq!(super::threads_for(10, 11), 1);
        assert!(super::threads_for(11, 11) >= 1);
    }
}
