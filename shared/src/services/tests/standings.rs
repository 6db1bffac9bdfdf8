//! Standings: a leaderboard page and the caller's own entry from one read, a person's standing,
//! and the cursor and challenge a page is refused for.

use super::*;
use crate::domain::LeaderboardEntry;
use crate::services::Standing;

/// Given: five walkers in November; ann and cay tie at the top.
async fn a_race(w: &World) -> ChallengeId {
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    for (who, walked) in [("ann", 9000), ("bea", 5000), ("cay", 9000), ("dan", 3000), ("eve", 7000)] {
        w.join(&november, &user(who)).await;
        w.walked(&user(who), Provider::AppleHealth, &[steps("2026-11-20", walked)]).await;
    }
    november
}

fn entry(rank: u32, who: &str, total: u64) -> LeaderboardEntry {
    LeaderboardEntry { rank, user: user(who), total, days: 1 }
}

#[tokio::test]
async fn a_leaderboard_page_and_the_callers_own_entry_agree() {
    let w = World::new();
    let november = a_race(&w).await;

    let first = w.standings().leaderboard(&november, &user("dan"), 2, None).await.unwrap();
    let second = w.standings().leaderboard(&november, &user("dan"), 2, first.page.next.as_deref()).await.unwrap();
    let last = w.standings().leaderboard(&november, &user("dan"), 2, second.page.next.as_deref()).await.unwrap();

    assert_eq!(first.page.entries, [entry(1, "ann", 9000), entry(1, "cay", 9000)], "a tie shares its rank");
    assert_eq!(second.page.entries, [entry(3, "eve", 7000), entry(4, "bea", 5000)]);
    assert_eq!((last.page.entries.as_slice(), last.page.next.as_deref()), ([entry(5, "dan", 3000)].as_slice(), None));
    assert_eq!(first.page.participants, 5);
    for answer in [&first, &second, &last] {
        assert_eq!(answer.me, Some(entry(5, "dan", 3000)), "the same on every page");
    }
}

#[tokio::test]
async fn someone_outside_the_challenge_has_no_entry_and_no_standing() {
    let w = World::new();
    let november = a_race(&w).await;

    let board = w.standings().leaderboard(&november, &user("zed"), 10, None).await.unwrap();
    let outside = w.standings().standing(&november, &user("zed")).await.unwrap();
    let inside = w.standings().standing(&november, &user("eve")).await.unwrap();

    assert_eq!((board.page.entries.len(), board.me), (5, None));
    assert_eq!(outside, None);
    assert_eq!(inside, Some(Standing { challenge_id: november, rank: 3, steps: 7000, participants: 5 }));
}

#[tokio::test]
async fn a_cursor_this_leaderboard_never_gave_is_invalid() {
    let w = World::new();
    let november = a_race(&w).await;

    let garbage = w.standings().leaderboard(&november, &user("ann"), 2, Some("!!not-a-cursor")).await;
    let unknown = w.standings().leaderboard(&ChallengeId::parse("nope").unwrap(), &user("ann"), 2, None).await;

    let invalid = r#"Invalid { field: "page_token", message: "is not valid; start again from the first page" }"#;
    assert_eq!(refused(garbage), invalid);
    assert_eq!(refused(unknown), r#"NotFound("challenge")"#);
}
