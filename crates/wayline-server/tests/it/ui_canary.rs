//! A canary from the browser: the app page offers one for a deployment that is not the live
//! release's, the form sets it through `SetCanary` (CSRF-checked), the release card shows the
//! split, and "End canary" puts all traffic back on the live release.

use crate::canary::{canaries, deployment, release, start};
use crate::ui::{cookie_for, get, http, post, ui_token};

/// The CSRF token in a page's first form.
fn csrf(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    body[at..].split('"').next().unwrap().to_owned()
}

const PAGE: &str = "/projects/p/apps/web";

#[tokio::test]
async fn a_canary_is_set_shown_and_ended_from_the_app_page() {
    let h = start().await;
    let mut c = h.client().await;
    let v1 = deployment(&mut c).await;
    release(&mut c, &v1.id).await;
    let v2 = deployment(&mut c).await;
    let cookie = cookie_for(&ui_token(&mut c).await);
    let addr = http(&h);

    let page = get(addr, PAGE, Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("name=\"weight\""),
        "no canary form:\n{}",
        page.body
    );
    assert!(!page.body.contains("End canary"), "{}", page.body);
    let token = csrf(&page.body);
    let action = format!("{PAGE}/actions");

    // Without the CSRF token the form is refused; a weight that is no percent says so.
    let forged = post(
        addr,
        &action,
        &cookie,
        &format!("action=canary&deployment={}&weight=10", v2.id),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let bad = post(
        addr,
        &action,
        &cookie,
        &format!("csrf={token}&action=canary&deployment={}&weight=ten", v2.id),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("A canary's weight is a whole percent from 0 to 99, not `ten`."),
        "{}",
        bad.body
    );
    let over = post(
        addr,
        &action,
        &cookie,
        &format!("csrf={token}&action=canary&deployment={}&weight=100", v2.id),
    )
    .await;
    assert_eq!(over.status, 400);
    assert!(over.body.contains("100 is a release"), "{}", over.body);
    assert!(canaries(&mut c).await.is_empty());

    let set = post(
        addr,
        &action,
        &cookie,
        &format!("csrf={token}&action=canary&deployment={}&weight=10", v2.id),
    )
    .await;
    assert_eq!(set.status, 303, "{}", set.body);
    assert_eq!(set.header("location"), Some(PAGE));
    let listed = canaries(&mut c).await;
    assert_eq!(
        listed
            .iter()
            .map(|x| (x.deployment_id.as_str(), x.weight))
            .collect::<Vec<_>>(),
        [(v2.id.as_str(), 10)]
    );
    let page = get(addr, PAGE, Some(&cookie)).await;
    assert!(
        page.body.contains(" takes 10 %, v1 the rest"),
        "{}",
        page.body
    );
    assert!(page.body.contains("End canary"), "{}", page.body);

    let end = post(
        addr,
        &action,
        &cookie,
        &format!("csrf={token}&action=canary&weight=0"),
    )
    .await;
    assert_eq!(end.status, 303, "{}", end.body);
    assert!(canaries(&mut c).await.is_empty());
    let page = get(addr, PAGE, Some(&cookie)).await;
    assert!(!page.body.contains("End canary"), "{}", page.body);
}
