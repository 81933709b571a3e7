//! HTTP Digest for SIP (RFC 3261 §22, RFC 8760): SHA-256 and MD5, qop=auth, stateless HMAC nonces
//! that expire, `stale=true` for expired nonces, and nonce-count replay refusal.
//!
//! Stored secrets are HA1 hashes (`H(user:realm:password)`), never passwords. An unknown user and
//! a wrong password get byte-identical challenges, so the 401 leaks nothing about who exists.

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use thiserror::Error;

/// Digest algorithms, in the order a server may prefer them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum Algorithm {
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "MD5")]
    Md5,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "SHA-256" => Some(Algorithm::Sha256),
            "MD5" | "" => Some(Algorithm::Md5),
            _ => None,
        }
    }

    /// Lower-case hex of H(data).
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
        }
    }
}

fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

/// HA1 = H(user:realm:password), what the agents table stores per algorithm.
pub fn ha1(alg: Algorithm, user: &str, realm: &str, password: &str) -> String {
    alg.hash(&format!("{user}:{realm}:{password}"))
}

/// An agent's stored digest secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl Credentials {
    pub fn from_password(user: &str, realm: &str, password: &str) -> Credentials {
        Credentials {
            ha1_md5: ha1(Algorithm::Md5, user, realm, password),
            ha1_sha256: ha1(Algorithm::Sha256, user, realm, password),
        }
    }

    fn ha1(&self, alg: Algorithm) -> &str {
        match alg {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// Why a request was not authenticated; each maps to a fresh challenge.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no Digest credentials")]
    Missing,
    #[error("malformed Authorization header")]
    Malformed,
    #[error("nonce was not issued by us")]
    BadNonce,
    #[error("nonce expired")]
    Stale,
    #[error("unknown user or wrong password")]
    Rejected,
    #[error("nonce-count replayed")]
    Replay,
    #[error("realm or algorithm not offered")]
    WrongRealm,
}

/// The parsed fields of a Digest Authorization header.
#[derive(Debug, Default, Clone)]
pub struct DigestResponse {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: String,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl DigestResponse {
    pub fn parse(value: &str) -> Result<DigestResponse, AuthError> {
        let v = value.trim();
        let (scheme, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::Missing);
        }
        let mut d = DigestResponse::default();
        for part in super::header::split_list(rest) {
            let Some((k, val)) = part.split_once('=') else {
                return Err(AuthError::Malformed);
            };
            let val = val.trim();
            let val = val
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(val)
                .to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "username" => d.username = val,
                "realm" => d.realm = val,
                "nonce" => d.nonce = val,
                "uri" => d.uri = val,
                "response" => d.response = val.to_ascii_lowercase(),
                "algorithm" => d.algorithm = val,
                "qop" => d.qop = Some(val),
                "nc" => d.nc = Some(val),
                "cnonce" => d.cnonce = Some(val),
                _ => {}
            }
        }
        if d.username.is_empty() || d.nonce.is_empty() || d.response.is_empty() {
            return Err(AuthError::Malformed);
        }
        Ok(d)
    }
}

/// Issues and checks digest challenges for one realm.
pub struct Authenticator {
    realm: String,
    algorithms: Vec<Algorithm>,
    key: Vec<u8>,
    nonce_ttl_s: u64,
    /// Highest nonce-count seen per nonce, pruned as nonces expire.
    seen_nc: HashMap<String, (u32, u64)>,
    salt: u64,
}

impl Authenticator {
    /// `algorithms` is the offer order (RFC 8760: preferred first). `key` signs nonces.
    pub fn new(realm: &str, algorithms: Vec<Algorithm>, key: Vec<u8>, nonce_ttl_s: u64) -> Self {
        Authenticator {
            realm: realm.to_string(),
            algorithms,
            key,
            nonce_ttl_s,
            seen_nc: HashMap::new(),
            salt: rand::random(),
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn sign(&self, ts: u64, salt: u64) -> String {
        // HMAC-SHA256 accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&ts.to_be_bytes());
        mac.update(&salt.to_be_bytes());
        mac.update(self.realm.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{ts:x}.{salt:x}.{}", hex(&tag[..16]))
    }

    /// A nonce that says when it was issued and that we issued it; nothing is stored. The salt
    /// makes every challenge unique, so two clients challenged in the same second never share a
    /// nonce (and so never trip each other's nonce-count replay check).
    pub fn nonce(&mut self, now_s: u64) -> String {
        self.salt = self.salt.wrapping_add(1);
        self.sign(now_s, self.salt)
    }

    /// `Ok(issued_at)` for our own nonce; `Stale` when older than the TTL.
    fn check_nonce(&self, nonce: &str, now_s: u64) -> Result<u64, AuthError> {
        let mut parts = nonce.split('.');
        let (Some(ts_hex), Some(salt_hex)) = (parts.next(), parts.next()) else {
            return Err(AuthError::BadNonce);
        };
        let ts = u64::from_str_radix(ts_hex, 16).map_err(|_| AuthError::BadNonce)?;
        let salt = u64::from_str_radix(salt_hex, 16).map_err(|_| AuthError::BadNonce)?;
        if !constant_eq(self.sign(ts, salt).as_bytes(), nonce.as_bytes()) {
            return Err(AuthError::BadNonce);
        }
        if now_s.saturating_sub(ts) > self.nonce_ttl_s || ts > now_s + 5 {
            return Err(AuthError::Stale);
        }
        Ok(ts)
    }

    /// The WWW-Authenticate values to send, one per offered algorithm, in offer order.
    pub fn challenges(&mut self, now_s: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now_s);
        self.algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{}\", opaque=\"acd\", algorithm={}, qop=\"auth\"{}",
                    self.realm,
                    nonce,
                    a.name(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    /// Verifies `authorization` for `method`; `lookup` yields the user's stored HA1s.
    pub fn verify(
        &mut self,
        now_s: u64,
        method: &str,
        authorization: Option<&str>,
        lookup: impl Fn(&str) -> Option<Credentials>,
    ) -> Result<String, AuthError> {
        let d = DigestResponse::parse(authorization.ok_or(AuthError::Missing)?)?;
        let alg = Algorithm::parse(&d.algorithm).ok_or(AuthError::WrongRealm)?;
        if d.realm != self.realm || !self.algorithms.contains(&alg) {
            return Err(AuthError::WrongRealm);
        }
        let nonce_state = self.check_nonce(&d.nonce, now_s);
        if matches!(nonce_state, Err(AuthError::BadNonce)) {
            return Err(AuthError::BadNonce);
        }
        // Unknown users are checked against a dummy HA1 so timing and answer match a bad password.
        let creds = lookup(&d.username);
        let dummy = Credentials::from_password("", "", "");
        let ha1 = creds.as_ref().unwrap_or(&dummy).ha1(alg);
        let ha2 = alg.hash(&format!("{method}:{}", d.uri));
        let (Some(qop), Some(nc), Some(cnonce)) = (&d.qop, &d.nc, &d.cnonce) else {
            return Err(AuthError::Malformed);
        };
        if qop != "auth" {
            return Err(AuthError::Malformed);
        }
        let expected = alg.hash(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", d.nonce));
        if creds.is_none() || !constant_eq(expected.as_bytes(), d.response.as_bytes()) {
            return Err(AuthError::Rejected);
        }
        // The digest is right: an old nonce is merely stale (the client retries silently).
        nonce_state?;
        let nc_val = u32::from_str_radix(nc, 16).map_err(|_| AuthError::Malformed)?;
        let entry = self.seen_nc.entry(d.nonce.clone()).or_insert((0, now_s));
        if nc_val <= entry.0 {
            return Err(AuthError::Replay);
        }
        entry.0 = nc_val;
        if self.seen_nc.len() > 10_000 {
            let ttl = self.nonce_ttl_s;
            self.seen_nc
                .retain(|_, (_, t)| now_s.saturating_sub(*t) <= ttl);
        }
        Ok(d.username)
    }
}

/// Compares in time that depends only on the lengths (secrets: nonces, digests, tokens).
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_response(alg: Algorithm, pw: &str, nonce: &str, nc: &str) -> String {
        let ha1 = ha1(alg, "1001", "acd", pw);
        let ha2 = alg.hash("REGISTER:sip:acd");
        let resp = alg.hash(&format!("{ha1}:{nonce}:{nc}:abc:auth:{ha2}"));
        format!(
            "Digest username=\"1001\", realm=\"acd\", nonce=\"{nonce}\", uri=\"sip:acd\", response=\"{resp}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"abc\"",
            alg.name()
        )
    }

    fn auth() -> Authenticator {
        Authenticator::new(
            "acd",
            vec![Algorithm::Sha256, Algorithm::Md5],
            b"k".to_vec(),
            300,
        )
    }

    fn lookup(u: &str) -> Option<Credentials> {
        (u == "1001").then(|| Credentials::from_password("1001", "acd", "secret"))
    }

    #[test]
    fn sha256_and_md5_accepted_replay_refused() {
        let mut a = auth();
        let n = a.nonce(100);
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
            let h = client_response(
                alg,
                "secret",
                &n,
                if alg == Algorithm::Md5 {
                    "00000002"
                } else {
                    "00000001"
                },
            );
            assert_eq!(
                a.verify(110, "REGISTER", Some(&h), lookup),
                Ok("1001".into())
            );
        }
        let h = client_response(Algorithm::Md5, "secret", &n, "00000002");
        assert_eq!(
            a.verify(111, "REGISTER", Some(&h), lookup),
            Err(AuthError::Replay)
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_look_the_same() {
        let mut a = auth();
        let n = a.nonce(100);
        let bad = client_response(Algorithm::Md5, "nope", &n, "00000001");
        assert_eq!(
            a.verify(100, "REGISTER", Some(&bad), lookup),
            Err(AuthError::Rejected)
        );
        let ghost = bad.replace("\"1001\"", "\"9999\"");
        assert_eq!(
            a.verify(100, "REGISTER", Some(&ghost), lookup),
            Err(AuthError::Rejected)
        );
    }

    #[test]
    fn expired_nonce_is_stale_forged_is_bad() {
        let mut a = auth();
        let n = a.nonce(100);
        let h = client_response(Algorithm::Sha256, "secret", &n, "00000001");
        assert_eq!(
            a.verify(1000, "REGISTER", Some(&h), lookup),
            Err(AuthError::Stale)
        );
        let forged = h.replace(&n, "64.1.00000000000000000000000000000000");
        assert_eq!(
            a.verify(100, "REGISTER", Some(&forged), lookup),
            Err(AuthError::BadNonce)
        );
        assert!(a.challenges(1000, true)[0].contains("stale=true"));
        assert!(a.challenges(1000, false)[0].contains("algorithm=SHA-256"));
    }

    #[test]
    fn every_challenge_has_its_own_nonce() {
        let mut a = auth();
        assert_ne!(a.nonce(100), a.nonce(100));
    }

    #[test]
    fn foreign_scheme_is_missing() {
        let mut a = auth();
        assert_eq!(
            a.verify(
                1,
                "REGISTER",
                Some("NoOneKnowsThisScheme opaque-data=here"),
                lookup
            ),
            Err(AuthError::Missing)
        );
    }
}
