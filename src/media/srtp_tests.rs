//! RFC 3711's own test vectors, then what a receiver must refuse.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn key_derivation_matches_rfc_3711_b3() {
    let mut m = MasterKey {
        key: [0; 16],
        salt: [0; 14],
    };
    m.key
        .copy_from_slice(&hex("E1F97A0D3E018BE0D64FA32C06DE4139"));
    m.salt.copy_from_slice(&hex("0EC675AD498AFEEBB6960B3AABE6"));
    let k = SessionKeys::new(&m);
    assert_eq!(k.cipher.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(k.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 20];
    derive(&m, 1, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

#[test]
fn aes_cm_keystream_matches_rfc_3711_b2() {
    let m = MasterKey {
        key: [0; 16],
        salt: [0; 14],
    };
    let mut k = SessionKeys::new(&m);
    k.cipher
        .copy_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C"));
    k.salt.copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
    let mut stream = [0u8; 32];
    k.crypt(0, 0, &mut stream);
    assert_eq!(
        stream.to_vec(),
        hex("E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB")
    );
}

fn packet(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn protect(tx: &mut Srtp, pkt: &[u8]) -> Vec<u8> {
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + TAG_LEN, 0);
    let n = tx.protect(&mut buf, pkt.len()).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn what_is_protected_unprotects_and_nothing_else_does() {
    let key = MasterKey::random();
    let (mut tx, mut rx) = (Srtp::new(&key), Srtp::new(&key));
    let plain = packet(1000, 0xdead_beef, b"hello, caller");
    let sealed = protect(&mut tx, &plain);
    assert_eq!(sealed.len(), plain.len() + TAG_LEN);
    assert_eq!(sealed[..12], plain[..12], "the header stays in clear");
    assert_ne!(sealed[12..plain.len()], plain[12..], "the payload does not");

    // A flipped bit anywhere is refused and leaves the receiver's state alone.
    for i in [1, 12, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 1;
        assert_eq!(rx.unprotect(&mut bad), Err(SrtpError::Auth), "byte {i}");
    }
    // Another key is refused.
    let mut stranger = protect(&mut Srtp::new(&MasterKey::random()), &plain);
    assert_eq!(rx.unprotect(&mut stranger), Err(SrtpError::Auth));

    let mut ok = sealed.clone();
    assert_eq!(rx.unprotect(&mut ok), Ok(plain.len()));
    assert_eq!(ok[..plain.len()], plain[..]);
    // The same packet again is a replay.
    let mut again = sealed.clone();
    assert_eq!(rx.unprotect(&mut again), Err(SrtpError::Replay));
    // Garbage is not RTP.
    assert_eq!(rx.unprotect(&mut [0u8; 8]), Err(SrtpError::NotRtp));
}

#[test]
fn late_packets_inside_the_window_pass_once_and_old_ones_never() {
    let key = MasterKey::random();
    let (mut tx, mut rx) = (Srtp::new(&key), Srtp::new(&key));
    let sealed: Vec<Vec<u8>> = (0..100u16)
        .map(|i| protect(&mut tx, &packet(5000 + i, 7, &[i as u8; 20])))
        .collect();
    for i in [0, 1, 2, 99] {
        let mut p = sealed[i].clone();
        assert!(rx.unprotect(&mut p).is_ok(), "packet {i}");
    }
    // 3..98 arrive late: inside 64 of the newest (99) they pass, once.
    let mut p = sealed[50].clone();
    assert!(rx.unprotect(&mut p).is_ok());
    let mut p = sealed[50].clone();
    assert_eq!(rx.unprotect(&mut p), Err(SrtpError::Replay));
    // 99 - 64 = 35 and older are outside the window.
    let mut p = sealed[20].clone();
    assert_eq!(rx.unprotect(&mut p), Err(SrtpError::Replay));
}

#[test]
fn the_rollover_counter_follows_a_sequence_wrap() {
    let key = MasterKey::random();
    let (mut tx, mut rx) = (Srtp::new(&key), Srtp::new(&key));
    for seq in (65_530u16..=65_535).chain(0..10) {
        let plain = packet(seq, 42, b"audio");
        let mut p = protect(&mut tx, &plain);
        assert_eq!(rx.unprotect(&mut p), Ok(plain.len()), "seq {seq}");
        assert_eq!(p[..plain.len()], plain[..]);
    }
}

#[test]
fn inline_keys_round_trip_and_bad_ones_are_refused() {
    let k = MasterKey::random();
    assert_eq!(MasterKey::from_inline(&k.to_inline()), Ok(k));
    let with_lifetime = format!("{}|2^31", k.to_inline());
    assert_eq!(MasterKey::from_inline(&with_lifetime), Ok(k));
    for bad in [
        "",
        "inline:",
        "inline:AAAA",
        "key:WVNfX19fX19fX19fX19fX19fX19fX19fX19fX19f",
    ] {
        assert_eq!(MasterKey::from_inline(bad), Err(SrtpError::BadKey), "{bad}");
    }
}
