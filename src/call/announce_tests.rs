//! Announcements follow the call's phase: a caller whose agent let the phone ring out is in
//! line again and hears their position again (they used to stop for good once a call had
//! been offered), and nobody hears one while talking.

use super::tests::*;
use crate::events::Event;
use std::time::Duration;

const PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
ring_timeout_s = 3
retry_s = 60
announce_position_s = 1
announce_every_s = 5

[[number]]
dial = "100"
queue = "sales"
"#;

fn announcements(r: &mut Rig) -> Vec<u32> {
    std::iter::from_fn(|| r.m.poll_event())
        .filter_map(|e| match e {
            Event::Announcement { position, .. } => Some(position),
            _ => None,
        })
        .collect()
}

#[test]
fn a_caller_back_in_line_after_a_ring_out_hears_their_position_again() {
    let mut r = Rig::with_plan(PLAN);
    r.register("1001", 7000);
    r.invite("ann");
    r.sent(7000, "INVITE"); // the agent's phone rings at once
    r.advance(Duration::from_secs(2));
    assert!(
        announcements(&mut r).is_empty(),
        "nothing is announced over a ringing phone"
    );
    // The ring runs out at 3 s; the agent rests for a minute, the caller waits alone.
    r.advance(Duration::from_secs(2));
    let _ = r.out();
    r.advance(Duration::from_secs(5));
    assert_eq!(
        announcements(&mut r),
        vec![1],
        "first in line again, and told so"
    );
    // Until it has been played, nothing else is: then hold music, and the next in 5 s.
    r.advance(Duration::from_secs(5));
    assert!(announcements(&mut r).is_empty(), "one prompt at a time");
    r.m.handle_media(r.now, super::MediaEvent::PromptDone { call: 1 });
    assert!(
        std::iter::from_fn(|| r.m.poll_media()).any(|m| m == super::MediaCommand::Hold { call: 1 }),
        "hold music after the announcement"
    );
    r.advance(Duration::from_secs(5));
    assert_eq!(announcements(&mut r), vec![1], "and again");
}
