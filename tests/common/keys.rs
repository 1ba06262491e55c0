//! Fixed asymmetric test keys, shared by the tests that sign for Discord, Telnyx and
//! SendGrid (the channel configures the public half, the signer holds the private one).

/// An Ed25519 private key's seed (bytes 01..20), hex.
pub const ED_SEED_HEX: &str = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
/// Its public key, hex (Discord's form).
pub const ED_PUBLIC_HEX: &str = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";
/// Its public key, base64 (Telnyx's form).
pub const ED_PUBLIC_B64: &str = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
/// Another Ed25519 key's public key (seed 07 x 32), hex: a key that is not the signer's.
pub const OTHER_ED_PUBLIC_HEX: &str =
    "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
/// A P-256 key: the verification key as SendGrid shows it (base64 SPKI DER).
pub const P256_SPKI_B64: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERxw+dYxJBChbun5TEY7Q9SSt6wdX0lvS+Oew1236cUzdUg96yoqLkXrMN/Ud6PDJu+OthYOC5wLcJaEtCfeoWA==";
/// The same P-256 key's private half, base64 PKCS#8 DER (what `hookrelay send` signs with).
pub const P256_PKCS8_B64: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze+hRANCAARHHD51jEkEKFu6flMRjtD1JK3rB1fSW9L457DXbfpxTN1SD3rKiouResw39R3o8Mm7462Fg4LnAtwloS0J96hY";
/// Another Ed25519 public key (seed 07 x 32), base64.
pub const OTHER_ED_PUBLIC_B64: &str = "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=";
/// Another P-256 verification key (base64 SPKI DER): not the signer's.
pub const OTHER_P256_SPKI_B64: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEg/AYCKlux/eFmWTLmzzniQtiqDoxxIVy0MzyAKtuCUTm0gtyGMipu7KctVGsse6WhwuNceXuA5ahTip1SzLTnA==";
