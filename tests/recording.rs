//! Call recording: a queue with `record = true` writes the conversation, caller and agent
//! mixed, to one 8 kHz WAV per call whose path is on the interaction row.

mod common;

use common::{agent, caller};
use std::time::Duration;

const PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
record = true
[[queue]]
name = "support"
skill = "support"
[[number]]
dial = "100"
queue = "sales"
[[number]]
dial = "200"
queue = "support"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_queue_leaves_a_wav_of_the_conversation_on_the_interaction() {
    let srv = common::start(Some(PLAN), |_| {}).await;
    // The agent echoes the caller's audio back: both directions carry sound.
    let a = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    let mut events = srv.running.core.events.subscribe();
    caller(&srv, "caller.xml", "100", 3000, 1)
        .success(Duration::from_secs(20))
        .await;
    a.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let mut interaction = None;
    while let Ok(ev) = events.try_recv() {
        if let acd::events::Event::CallArrived { interaction: i, .. } = ev {
            interaction = Some(i);
        }
    }
    let id = interaction.expect("the call arrived");
    let mut row = None;
    for _ in 0..100 {
        row = srv.running.store.interaction(&id).await.unwrap();
        if row.as_ref().is_some_and(|r| r.outcome.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = row.expect("row");
    let path = row.recording.expect("recording path on the row");
    assert!(path.ends_with(&format!("{id}.wav")), "{path}");
    let wav = std::fs::read(&path).expect("the recording exists");
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(&wav[8..16], b"WAVEfmt ");
    assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 8000);
    let data = u32::from_le_bytes(wav[40..44].try_into().unwrap()) as usize;
    assert_eq!(data, wav.len() - 44, "the header was finished");
    let secs = data as f64 / 16_000.0;
    assert!(
        (1.5..=5.0).contains(&secs),
        "about the 3 s of talk: {secs:.2} s"
    );
    let pcm: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let loud = pcm.iter().filter(|s| s.unsigned_abs() > 500).count();
    assert!(
        loud > pcm.len() / 10,
        "speech, not silence: {loud} of {} loud",
        pcm.len()
    );

    // A queue without `record` leaves nothing.
    let b = agent(&srv, "1002", "agent_answer.xml", 1, true).await;
    caller(&srv, "caller.xml", "200", 1000, 1)
        .success(Duration::from_secs(20))
        .await;
    b.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let files = std::fs::read_dir(srv.dir.path().join("recordings"))
        .unwrap()
        .count();
    assert_eq!(files, 1, "only the recorded queue's call");
}
