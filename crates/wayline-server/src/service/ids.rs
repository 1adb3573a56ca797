//! Ids as users type them: a full id, or any prefix of one that matches exactly one record.
//! Lists print short ids; every RPC that takes a job, operation or runner id resolves it here,
//! so `wayline job inspect 01M8SDWNN3` works and an ambiguous prefix names its candidates.

use tonic::Status;
use wayline_proto::v1 as pb;

use super::Shared;
use super::store_status;
use crate::store::IdTable;

/// How many candidates an ambiguous prefix lists.
const CANDIDATES: usize = 5;

/// The one id among `ids` that `given` means: itself when present, else its only extension.
fn pick(what: &str, given: &str, mut ids: Vec<String>) -> Result<String, Status> {
    if ids.iter().any(|id| id == given) {
        return Ok(given.to_owned());
    }
    ids.sort();
    ids.dedup();
    match ids.len() {
        0 => Err(Status::not_found(format!("{what} {given} does not exist"))),
        1 => Ok(ids.remove(0)),
        n => {
            let shown: Vec<&str> = ids.iter().take(CANDIDATES).map(String::as_str).collect();
            let more = if n > CANDIDATES { ", …" } else { "" };
            Err(Status::invalid_argument(format!(
                "`{given}` is the start of several {what} ids ({}{more}); type more of it",
                shown.join(", ")
            )))
        }
    }
}

/// Resolves a job id or prefix (stored jobs and those only in the queue so far).
pub(super) async fn job(shared: &Shared, given: &str) -> Result<String, Status> {
    if given.is_empty() {
        return Ok(String::new());
    }
    let limit = u32::try_from(CANDIDATES + 1).unwrap_or(u32::MAX);
    let mut ids = shared
        .store
        .ids_with_prefix(IdTable::Jobs, given, limit)
        .await
        .map_err(store_status)?;
    if ids.is_empty() && shared.queue.get(given).is_some() {
        ids.push(given.to_owned());
    }
    pick("job", given, ids)
}

/// Resolves an operation id or prefix of one kind (`deployment`, `release`, …).
pub(super) async fn operation(
    shared: &Shared,
    kind: pb::OperationKind,
    what: &str,
    given: &str,
) -> Result<String, Status> {
    if given.is_empty() {
        return Ok(String::new());
    }
    let limit = u32::try_from(CANDIDATES + 1).unwrap_or(u32::MAX);
    let ids = shared
        .store
        .ids_with_prefix(IdTable::Operations(kind as i32), given, limit)
        .await
        .map_err(store_status)?;
    pick(what, given, ids)
}

/// Resolves a runner id or prefix among the runners the server knows.
pub(super) fn runner(shared: &Shared, given: &str) -> Result<String, Status> {
    if given.is_empty() || shared.runners.get(given).is_some() {
        return Ok(given.to_owned());
    }
    let ids = shared
        .runners
        .list()
        .into_iter()
        .map(|r| r.id)
        .filter(|id| id.starts_with(given))
        .collect();
    pick("runner", given, ids).map_err(|s| {
        if s.code() == tonic::Code::NotFound {
            Status::not_found(format!("runner {given} is not known to this server"))
        } else {
            s
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_resolves_to_its_only_match_and_lists_candidates_otherwise() {
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(pick("job", "01AB", ids(&["01ABCD"])).unwrap(), "01ABCD");
        // The exact id wins even when it is also the start of another.
        assert_eq!(
            pick("job", "01AB", ids(&["01AB", "01ABCD"])).unwrap(),
            "01AB"
        );
        let e = pick("job", "01", ids(&["01AB", "01CD"])).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            e.message(),
            "`01` is the start of several job ids (01AB, 01CD); type more of it"
        );
        let e = pick("deployment", "ZZ", Vec::new()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert_eq!(e.message(), "deployment ZZ does not exist");
    }
}
