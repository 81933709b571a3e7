//! SDP offer/answer against what real phones offer: codecs, telephone-event clocks, SRTP.

use super::*;

const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\nm=video 3227 RTP/AVP 31\r\n";

#[test]
fn telephone_event_is_the_one_on_the_g711_clock() {
    // pjsua2 offers 16000 first, linphone 48000: the 8000 Hz one goes with G.711.
    for (formats, maps, want) in [
        (
            "0 120 121",
            "a=rtpmap:120 telephone-event/16000\r\na=rtpmap:121 telephone-event/8000\r\n",
            Some(121),
        ),
        (
            "0 99 101",
            "a=rtpmap:99 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n",
            Some(101),
        ),
        ("0 99", "a=rtpmap:99 telephone-event/48000\r\n", None),
        ("0 101", "a=rtpmap:101 telephone-event/8000\r\n", Some(101)),
    ] {
        let body = format!(
            "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP {formats}\r\na=rtpmap:0 PCMU/8000\r\n{maps}"
        );
        let n = Sdp::parse(body.as_bytes()).unwrap().negotiate().unwrap();
        assert_eq!(n.dtmf_pt, want, "{formats}");
    }
}

#[test]
fn negotiates_first_supported_codec_and_dtmf() {
    let s = Sdp::parse(SIPP.as_bytes()).unwrap();
    let n = s.negotiate().unwrap();
    assert_eq!(n.codec, Codec::Pcma);
    assert_eq!(n.dtmf_pt, Some(101));
    assert_eq!(n.remote, "127.0.0.1:6000".parse().unwrap());
    let local = LocalMedia {
        ip: "127.0.0.1".parse().unwrap(),
        port: 20000,
        session_id: 1,
        version: 1,
        srtp: None,
    };
    let a = answer(&local, &s, &n);
    assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"));
    assert!(a.contains("m=video 0 RTP/AVP 31\r\n"), "{a}");
    let back = Sdp::parse(a.as_bytes()).unwrap().negotiate().unwrap();
    assert_eq!(back.codec, Codec::Pcma);
}

#[test]
fn ipv6_connection_and_no_common_codec() {
    let s = Sdp::parse(b"v=0\r\nc=IN IP6 2001:db8::10\r\nm=audio 49217 RTP/AVP 0 12\r\n").unwrap();
    assert_eq!(
        s.negotiate().unwrap().remote.ip(),
        "2001:db8::10".parse::<IpAddr>().unwrap()
    );
    let s = Sdp::parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 49217 RTP/AVP 18\r\n").unwrap();
    assert_eq!(s.negotiate(), Err(SdpError::NoCommonCodec));
    assert!(Sdp::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n").is_err());
}

#[test]
fn srtp_offers_are_answered_with_our_key_under_their_tag() {
    use crate::media::srtp::MasterKey;
    let theirs = MasterKey::random();
    let offer = format!(
        "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0 101\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=crypto:2 AES_CM_256_HMAC_SHA1_80 inline:AAAA\r\n\
         a=crypto:7 AES_CM_128_HMAC_SHA1_80 {}|2^31\r\n",
        theirs.to_inline()
    );
    let sdp = Sdp::parse(offer.as_bytes()).unwrap();
    let n = sdp.negotiate().unwrap();
    assert_eq!(
        n.srtp,
        Some(Crypto {
            tag: 7,
            key: theirs
        })
    );
    let ours = MasterKey::random();
    let local = LocalMedia {
        ip: "127.0.0.1".parse().unwrap(),
        port: 20000,
        session_id: 1,
        version: 1,
        srtp: Some(ours),
    };
    let a = answer(&local, &sdp, &n);
    assert!(a.contains("m=audio 20000 RTP/SAVP 0 101\r\n"), "{a}");
    assert!(
        a.contains(&format!(
            "a=crypto:7 AES_CM_128_HMAC_SHA1_80 {}\r\n",
            ours.to_inline()
        )),
        "{a}"
    );
    // And our answer reads back as the same key.
    let back = Sdp::parse(a.as_bytes()).unwrap().negotiate().unwrap();
    assert_eq!(back.srtp.map(|c| c.key), Some(ours));
    // An offer for us (an agent) carries tag 1.
    let o = offer_plain_or_not(&local);
    assert!(
        o.contains("RTP/SAVP") && o.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{o}"
    );
}

fn offer_plain_or_not(local: &LocalMedia) -> String {
    offer(local, &[Codec::Pcmu], 101)
}

#[test]
fn an_agent_is_offered_the_callers_law_first_and_the_other_for_transcoding() {
    let local = LocalMedia {
        ip: "10.0.0.9".parse().unwrap(),
        port: 20002,
        session_id: 77,
        version: 3,
        srtp: None,
    };
    let o = offer(&local, &Codec::Pcma.preferred(), 101);
    assert!(o.contains("m=audio 20002 RTP/AVP 8 0 101\r\n"), "{o}");
    assert!(
        o.contains("a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"),
        "{o}"
    );
    // A PCMU-only phone's answer is taken (and the bridge transcodes).
    let pcmu_only = o.replace("RTP/AVP 8 0 101", "RTP/AVP 0 101");
    let n = Sdp::parse(pcmu_only.as_bytes())
        .unwrap()
        .negotiate()
        .unwrap();
    assert_eq!(n.codec, Codec::Pcmu);
    // Our o= reads back (a resumed call's agent leg goes on from it).
    assert_eq!(
        Origin::of(o.as_bytes()),
        Some(Origin {
            session: 77,
            version: 3
        })
    );
    assert_eq!(Origin::of(b"v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n"), None);
    let (mut a, b) = (Origin::new(), Origin::new());
    assert_ne!(a.session, b.session, "random per leg");
    assert!(a.session < 1 << 63);
    assert_eq!((a.bump(), a.bump()), (2, 3));
}

#[test]
fn srtp_without_a_suite_we_take_is_refused_and_plain_stays_plain() {
    let only256 = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:AAAA\r\n";
    assert_eq!(
        Sdp::parse(only256.as_bytes()).unwrap().negotiate(),
        Err(SdpError::NoCommonCrypto)
    );
    let bad_key = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short\r\n";
    assert_eq!(
        Sdp::parse(bad_key.as_bytes()).unwrap().negotiate(),
        Err(SdpError::NoCommonCrypto)
    );
    let plain = Sdp::parse(SIPP.as_bytes()).unwrap().negotiate().unwrap();
    assert_eq!(plain.srtp, None);
}
